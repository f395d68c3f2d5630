// Plain HTML pages for the login interaction (no JavaScript, labelled inputs for browser tests).
const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export function loginPage({ title, mount, uid, clientId, scope, login = '', error = '' }) {
  const base = `${mount}/interaction/${encodeURIComponent(uid)}`;
  const errorBlock = error ? `<p role="alert" class="error">${esc(error)}</p>\n` : '';
  return page(`Sign in - ${title}`, `<h1>Sign in to ${esc(title)}</h1>
<p>Client <code>${esc(clientId)}</code> requests: <code>${esc(scope)}</code></p>
${errorBlock}<form method="post" action="${esc(base)}/login" id="login-form">
  <p><label for="login">Username</label>
  <input type="text" id="login" name="login" value="${esc(login)}" autocomplete="username" autofocus></p>
  <p><label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password"></p>
  <p><button type="submit" id="submit">Sign in</button></p>
</form>
<form method="post" action="${esc(base)}/abort" id="abort-form">
  <p><button type="submit" id="deny">Deny</button></p>
</form>`);
}

export function errorPage(title, message) {
  return page(title, `<h1>${esc(title)}</h1>\n<p>${esc(message)}</p>`);
}
