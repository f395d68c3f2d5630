"""``IRISSpawner``: KubeSpawner with group-aware profiles, POSIX identities and quotas.

Thin glue: the decisions are made by the pure functions of
:mod:`~iris_jupyterhub.spawner.profiles`, :mod:`~iris_jupyterhub.spawner.resolution`,
:mod:`~iris_jupyterhub.spawner.security`, :mod:`~iris_jupyterhub.spawner.pod` and
:mod:`~iris_jupyterhub.spawner.quotas`; this class reads the user's ``auth_state``, calls
them, and applies the result through KubeSpawner's own override mechanism.
"""

from __future__ import annotations

import functools
import json
import pickle
from typing import Any

from kubespawner import KubeSpawner
from traitlets import Dict, List, Unicode, default, validate

from ..accounting.hooks import AccountingMixin
from ..errors import UserFacingError, as_http_error
from ..groups import GroupRule, memberships_from_auth_state, parse_group_rules
from ..rucio.config import RucioTokens
from ..rucio.pod import rucio_pod, rucio_traits
from ..storage.spawner import prepare_storage
from .charging import admitted_rules, charge_group, granting_rules
from .checks import validate_gpu_option
from .errors import SpawnRequestError
from .form import associate_labels, canonical_of, charge_line, form_template, group_fieldset
from .pod import PodSettings, pod_for, spawner_traits
from .profiles import Profile, validate_profile_list
from .quotas import validate_group_quotas
from .resolution import profile_list_for_form, resolve_request, visible_profiles
from .resources import (
    DEFAULT_GPU_NODE_SELECTOR,
    DEFAULT_GPU_RESOURCE,
    DEFAULT_GPU_TOLERATION,
    GpuScheduling,
    ResourceTotals,
)
from .security import run_as
from .usage import STATE_KEY, built_usage, hub_usage

__all__ = ["IRISSpawner"]


class IRISSpawner(AccountingMixin, KubeSpawner):  # type: ignore[misc]
    """KubeSpawner whose ``profile_list`` understands IRIS groups and POSIX identities.

    ``profile_list`` takes the Zero to JupyterHub format unchanged, plus
    ``allowed_groups`` / ``required_groups`` on profiles and choices, a ``resources``
    shorthand (``cpu``, ``memory``, ``gpu``) and ``allowed_image_registries`` for
    ``unlisted_choice`` images. Every request, from the form or the REST API, is checked
    again on the server against the user's current groups: unknown choices are a 400,
    choices the user may not use a 403. The server runs as the user's POSIX uid, with the
    chosen group as ``runAsGroup`` (and ``fsGroup`` when no shares are mounted) and all
    their groups as ``supplementalGroups``; never as root and without privilege escalation.
    """

    # KubeSpawner traits assigned below (annotations only, for mypy)
    user_options: dict[str, Any]
    tolerations: list[Any]
    environment: dict[str, Any]

    group_quotas = Dict(
        config=True,
        help="""
        Limits per canonical group across the running servers that run as that group,
        e.g. ``{"iris/lsst": {"servers": 20, "cpu": 64, "memory": "256G", "gpu": 4}}``.
        A spawn over a limit is refused with a message naming the limit.
        """,
    )

    @validate("group_quotas")
    def _validate_group_quotas(self, proposal: Any) -> dict[str, Any]:
        try:
            validate_group_quotas(proposal.value)
        except ValueError as e:
            raise ValueError(f"IRISSpawner.group_quotas: {e}") from e
        return dict(proposal.value)

    charge_group_preference = List(
        Unicode(),
        config=True,
        help="""
        Canonical groups to charge usage to first, most preferred first, e.g.
        ``["iris/lsst", "iris/dune", "iris"]``. Every session is charged to a VO group:
        the group run as when it is one, else the group whose ``allowed_groups`` /
        ``required_groups`` rule gave the user the chosen profile or choice, else the
        authenticator's ``allowed_groups`` / ``required_groups`` rule that admitted them
        to the hub. Where several rules qualify, the one this list names first wins
        (an entry without a role also covers that group with any role); a user admitted
        by name is charged to the first entry they are a member of. The charged group
        goes to the accounting records (APEL FQAN/VO, XDMoD account) and the metrics'
        ``group`` label, and is shown on the spawn form.
        """,
    )

    @validate("charge_group_preference")
    def _validate_charge_group_preference(self, proposal: Any) -> list[str]:
        parse_group_rules(proposal.value, "IRISSpawner.charge_group_preference")
        return list(proposal.value)

    def _charge_preference(self) -> tuple[GroupRule, ...]:
        return _preference_rules(tuple(self.charge_group_preference))

    gpu_resource = Unicode(
        DEFAULT_GPU_RESOURCE,
        config=True,
        help="Extended resource requested for ``resources: {gpu: N}`` in profiles.",
    )

    gpu_node_selector = Dict(
        dict(DEFAULT_GPU_NODE_SELECTOR),
        config=True,
        help="Node labels a GPU server must run on (a profile's own node_selector wins).",
    )

    gpu_toleration = Dict(
        dict(DEFAULT_GPU_TOLERATION),
        config=True,
        help="Toleration given to GPU servers; an empty dict for none.",
    )

    @validate("gpu_resource", "gpu_node_selector", "gpu_toleration")
    def _validate_gpu(self, proposal: Any) -> Any:
        return validate_gpu_option(proposal.trait.name, proposal.value)

    @validate("profile_list")
    def _validate_iris_profile_list(self, proposal: Any) -> Any:
        if callable(proposal.value):
            return proposal.value
        try:
            validate_profile_list(proposal.value, self._gpu())
        except ValueError as e:
            raise ValueError(f"IRISSpawner.profile_list: {e}") from e
        return proposal.value

    def _gpu(self) -> GpuScheduling:
        return GpuScheduling(
            resource=self.gpu_resource,
            node_selector=dict(self.gpu_node_selector),
            toleration=dict(self.gpu_toleration) or None,
        )

    async def _profiles(self) -> list[Profile]:
        raw = self.profile_list
        if callable(raw):
            raw = await _maybe_await(raw(self))
        try:
            return _validated_profiles(raw or [], self._gpu())
        except ValueError as e:
            self.log.error("IRISSpawner.profile_list is invalid: %s", e)
            raise SpawnRequestError(
                500,
                "The hub's profile list is misconfigured, so servers cannot be started. "
                "The hub administrators have been told; please contact them.",
            ) from e

    # --- the form ---------------------------------------------------------------------

    @default("options_form")
    def _iris_options_form_default(self) -> Any:
        return self._render_iris_form if self.profile_list else ""

    async def _render_iris_form(self, spawner: Any) -> str:
        with as_http_error():
            return await self._iris_form()

    async def _iris_form(self) -> str:
        auth_state = await self.user.get_auth_state() or {}
        memberships = memberships_from_auth_state(auth_state)
        visible = visible_profiles(await self._profiles(), memberships)
        form = associate_labels(self._render_profile_form(profile_list_for_form(visible)))
        posix = auth_state.get("posix") or {}
        charge = charge_line(
            visible,
            memberships,
            posix=posix,
            saved=self.user_options,
            admitted=admitted_rules(auth_state),
            preference=self._charge_preference(),
        )
        return form + group_fieldset(posix, self.user_options) + charge

    def _render_profile_form(self, listing: list[dict[str, Any]]) -> str:
        """KubeSpawner's form for ``listing``, from the compiled template kept between
        renders (:func:`~iris_jupyterhub.spawner.form.form_template`). The same HTML as
        KubeSpawner's ``_render_options_form``: the same initialised list, template and
        ``user_options`` (which KubeSpawner passes unvalidated, so the saved choices are
        preselected; IRIS judges them itself when the form is submitted)."""
        template = form_template(
            self.profile_form_template, self.additional_profile_form_template_paths
        )
        return template.render(
            profile_list=self._get_initialized_profile_list(listing),
            user_options=self.user_options,
        )

    @default("options_from_form")
    def _iris_options_from_form_default(self) -> Any:
        return self._iris_options_from_form

    def _iris_options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        options: dict[str, Any] = self._options_from_form(formdata)
        group = (formdata.get("group") or [""])[0]
        if group:
            options["group"] = group
        return options

    # --- applying a request -----------------------------------------------------------

    def _request_is_saved(self) -> bool:
        """True when no options came with this request (JupyterHub reused saved ones)."""
        request = getattr(getattr(self, "handler", None), "request", None)
        if request is None:
            return True
        if request.method == "POST":
            return not request.body
        # GET /hub/spawn?profile=... carries explicit options (JupyterHub's options_from_query)
        return not (set(request.query_arguments) - {"next", "_xsrf"})

    async def load_user_options(self) -> None:
        """Validate ``user_options`` against the user's groups, then apply the result.

        Raises:
            tornado.web.HTTPError: With the researcher's sentence, for a request that
                cannot be honoured (:class:`SpawnRequestError`) or failed storage
                (:class:`~iris_jupyterhub.storage.StorageError`, logged where it happens).
        """
        with as_http_error(self._log_refusal):
            await self._load_iris_options()

    def _log_refusal(self, error: UserFacingError) -> None:
        if isinstance(error, SpawnRequestError):
            self.log.warning("Spawn request of %s refused: %s", self.user.name, error)

    async def _load_iris_options(self) -> None:
        auth_state = await self.user.get_auth_state() or {}
        memberships = memberships_from_auth_state(auth_state)
        stale = self._request_is_saved()
        options = dict(self.user_options or {})
        group = options.pop("group", None)
        notices: list[str] = []
        resources = ResourceTotals()
        profile_storage = profile_rucio = True
        granted: tuple[GroupRule, ...] = ()
        profiles = await self._profiles()
        if profiles:
            resolution = resolve_request(
                profiles, memberships, options, stale_fallback=stale, gpu=self._gpu()
            )
            self._apply_overrides(dict(resolution.overrides))
            if resolution.tolerations:
                self.tolerations = [*self.tolerations, *resolution.tolerations]
            notices += resolution.notices
            resources = resolution.resources
            options = resolution.user_options
            profile_storage = resolution.profile.storage
            profile_rucio = resolution.profile.rucio
            granted = granting_rules(resolution.profile, resolution.choices)
        elif options:
            raise SpawnRequestError(
                400,
                "This hub offers no profiles to choose from. "
                "Please contact the hub administrators.",
            )
        posix = auth_state.get("posix")
        run = run_as(posix, group, stale_fallback=stale)
        if run.notice:
            notices.append(run.notice)
        canonical = canonical_of(posix or {}, run.group)
        self._check_quota(canonical, resources)
        # last: a request refused above never creates a share (ManilaStorage, if enabled)
        storage = await prepare_storage(self, auth_state, profile_storage=profile_storage)
        self._apply_pod(pod_for(run, storage))
        if profile_rucio:
            self._apply_rucio(auth_state)
        self.user_options = {**options, "group": run.group}
        self._iris_state = {
            "group": canonical,
            "charge_group": charge_group(
                chosen=canonical,
                granted=granted,
                admitted=admitted_rules(auth_state),
                memberships=memberships,
                preference=self._charge_preference(),
            ),
            "cpu": resources.cpu,
            "memory": resources.memory,
            "gpu": resources.gpu,
        }
        for notice in notices:
            self.log.info("Spawn notice for %s: %s", self.user.name, notice)
        self._iris_notices = notices

    def _apply_pod(self, pod: PodSettings) -> None:
        """Assign everything :func:`~iris_jupyterhub.spawner.pod.build_pod` assembled."""
        current = {
            "volumes": self.volumes,
            "volume_mounts": self.volume_mounts,
            "init_containers": self.init_containers,
            "environment": self.environment,
        }
        traits, clash = spawner_traits(pod, current)
        if clash:
            self.log.warning(
                "Storage: the spawner already mounts something at %s; the share is mounted "
                "there instead (set singleuser.storage.type: none in z2jh)",
                ", ".join(clash),
            )
        for name, value in traits.items():
            setattr(self, name, value)

    def _apply_rucio(self, auth_state: dict[str, Any]) -> None:
        """Rucio's environment and token directory, for a user who gets an instance."""
        settings = RucioTokens(config=self.config)
        if not settings.instances:
            return
        pod = rucio_pod(
            settings.parsed_instances(),
            auth_state,
            self.user.name,
            settings.notebook_dir,
            volume=settings.notebook_volume,
        )
        if pod is not None:
            current = {"environment": self.environment, "volumes": self.volumes}
            current["volume_mounts"] = self.volume_mounts
            for name, value in rucio_traits(pod, current).items():
                setattr(self, name, value)

    def _check_quota(self, canonical: str | None, request: ResourceTotals) -> None:
        """Check and count this server in its group's running totals (O(1), see usage)."""
        quotas = validate_group_quotas(self.group_quotas)
        if not canonical or canonical not in quotas:
            return
        usage = hub_usage(self.user.db)
        usage.reserve(self.orm_spawner.id, canonical, request, quotas)

    async def progress(self) -> Any:
        """KubeSpawner's progress events, preceded by this spawn's notices.

        Notices (e.g. "Your previous choice 'GPU' is no longer available; using
        'Standard'") appear on the hub's "server starting" page and in the REST API's
        progress stream, so a fallback is never silent.
        """
        for notice in self._iris_notices:
            yield {"progress": 1, "message": notice}
        async for event in super().progress():
            yield event

    # --- state kept with the server (for quotas and accounting) ------------------------

    _iris_state: dict[str, Any] | None = None
    _iris_notices: list[str] = []  # noqa: RUF012  (replaced per spawn, never mutated)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self._iris_state:
            state[STATE_KEY] = self._iris_state
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._iris_state = state.get(STATE_KEY)

    def clear_state(self) -> None:
        """Forget the server's state; JupyterHub calls this when a server stops or fails to
        start (and before each spawn), so its group stops counting against the quota."""
        super().clear_state()
        self._iris_state = None
        orm_spawner = getattr(self, "orm_spawner", None)
        db = getattr(self.user, "db", None)
        if orm_spawner is not None and db is not None and self.group_quotas:
            usage = built_usage(db)
            if usage is not None:
                usage.release(orm_spawner.id)


_VALIDATED: dict[bytes | str, list[Profile]] = {}


def _validated_profiles(raw: Any, gpu: GpuScheduling) -> list[Profile]:
    """Validate a profile list once per distinct content (spawners are created per spawn).

    Validated profiles are frozen and resolution deep-copies what it hands out, so one
    validated list can serve every spawner. Raises ValueError like validate_profile_list.
    """
    key = _content_key(raw, gpu)
    found = _VALIDATED.get(key)
    if found is None:
        found = validate_profile_list(raw, gpu)
        if len(_VALIDATED) >= 16:
            _VALIDATED.clear()
        _VALIDATED[key] = found
    return found


@functools.lru_cache(maxsize=16)
def _preference_rules(texts: tuple[str, ...]) -> tuple[GroupRule, ...]:
    return parse_group_rules(texts, "IRISSpawner.charge_group_preference")


def _content_key(raw: Any, gpu: GpuScheduling) -> bytes | str:
    """A key equal only for equal content of the same types (``True``, ``1`` and ``1.0``
    differ): pickle, several times faster than JSON on a long list; JSON with ``repr``
    for lists holding what pickle refuses (a callable in a ``kubespawner_override``)."""
    try:
        return pickle.dumps((raw, repr(gpu)), protocol=5)
    except Exception:  # anything unpicklable: fall back to the JSON key
        return json.dumps([raw, repr(gpu)], sort_keys=True, default=repr)


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value
