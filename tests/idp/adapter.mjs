// A tiny in-memory storage adapter for oidc-provider.
//
// oidc-provider's own memory adapter is private to one Provider instance. We keep the storage
// outside the Provider so that a provider can be rebuilt (to rotate its signing keys) without
// losing sessions, grants, codes and refresh tokens.
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

export function createStore() {
  return { items: new Map(), sessionUids: new Map(), grants: new Map() };
}

export function adapterFactory(store) {
  return (model) => ({
    key: (id) => `${model}:${id}`,
    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
      store.items.set(key, { payload, expiresAt });
      if (model === 'Session') store.sessionUids.set(payload.uid, id);
      if (GRANTABLE.has(model) && payload.grantId) {
        if (!store.grants.has(payload.grantId)) store.grants.set(payload.grantId, new Set());
        store.grants.get(payload.grantId).add(key);
      }
    },
    async find(id) {
      const entry = store.items.get(this.key(id));
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        store.items.delete(this.key(id));
        return undefined;
      }
      return entry.payload;
    },
    async findByUid(uid) {
      const id = store.sessionUids.get(uid);
      return id === undefined ? undefined : this.find(id);
    },
    async findByUserCode() {
      return undefined;
    },
    async consume(id) {
      const entry = store.items.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    },
    async destroy(id) {
      store.items.delete(this.key(id));
    },
    async revokeByGrantId(grantId) {
      for (const key of store.grants.get(grantId) ?? []) store.items.delete(key);
      store.grants.delete(grantId);
    },
  });
}
