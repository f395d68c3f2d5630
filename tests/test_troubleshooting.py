"""docs/admin/troubleshooting.md lists every message the library shows or logs as a warning.

The messages are found in the source itself (:mod:`tests.message_scan`), so a new
``log.warning``, ``http_error`` or start-up ``ValueError`` without an entry on the page
fails here, naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.message_scan import Message, missing_from, normalise, scan_messages

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "admin" / "troubleshooting.md"
# Modules whose every ValueError is a configuration error that stops the hub at start-up
# (the @validate methods and startup.check_config call their functions).
CONFIG_MODULES = frozenset(
    {
        "accounting/config.py",
        "auth/claims.py",
        "auth/settings.py",
        "auth/tokens.py",
        "groups.py",
        "posix/settings.py",
        "rucio/config.py",
        "snippets/hub.py",
        "snippets/parsing.py",
        "snippets/settings.py",
        "spawner/checks.py",
        "spawner/profiles.py",
        "spawner/quotas.py",
        "spawner/resources.py",
        "startup.py",
        "storage/groups.py",
        "storage/options.py",
    }
)
# Modules whose ValueErrors that name no option are consistency checks of values the
# library built itself from checked options: one failing is a bug, logged by JupyterHub
# with its traceback, not something an administrator configures.
INTERNAL_MODULES = {
    "accounting/records.py": "SessionRecord invariants (UTC times, end reasons)",
    "accounting/store.py": "the end reasons the hooks pass",
    "auth/usernames.py": "the max_length the authenticator passes",
    "storage/manifests.py": "names and mounts built from ManilaStorage's checked options",
    "storage/volumes.py": "volumes and the ownership step built from checked options",
}
# Command-line tools print to the terminal, not to the hub log or a researcher's page
# (posix/files.py and posix/readers.py are the import formats of `iris-jupyterhub posix`).
COMMAND_LINE = frozenset({"cli.py", "cli_support.py", "posix/files.py", "posix/readers.py"})


def library_messages() -> list[Message]:
    """Every message of iris_jupyterhub/ and the jupyterhub_config.d/ snippets."""
    messages: list[Message] = []
    package = ROOT / "iris_jupyterhub"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if path.name in COMMAND_LINE or relative in COMMAND_LINE:
            continue
        messages += scan_messages(
            path.read_text(),
            relative,
            startup_module=relative in CONFIG_MODULES,
            internal_module=relative in INTERNAL_MODULES,
        )
    for path in sorted((ROOT / "jupyterhub_config.d").glob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        messages += scan_messages(path.read_text(), relative, startup_module=True)
    return messages


def test_the_declared_modules_exist() -> None:
    package = ROOT / "iris_jupyterhub"
    for relative in (*CONFIG_MODULES, *INTERNAL_MODULES, *COMMAND_LINE):
        if "/" in relative:
            assert (package / relative).is_file(), relative


def describe(messages: list[Message]) -> str:
    return "\n".join(f"  {m.path}:{m.line} ({m.kind}): {m.text}" for m in messages)


def test_the_page_lists_every_message_of_the_library() -> None:
    messages = library_messages()
    missing = missing_from(PAGE.read_text(), messages)
    assert not missing, (
        f"docs/admin/troubleshooting.md does not list {len(missing)} message(s); add each "
        f"with what it means and what to do:\n{describe(missing)}"
    )


def test_the_scan_finds_the_messages_of_every_concern() -> None:
    """A guard against a scanner that silently finds nothing."""
    messages = library_messages()
    kinds = {m.kind for m in messages}
    assert kinds == {"log", "page", "error", "startup"}
    paths = {m.path.split("/")[0] for m in messages}
    assert {"auth", "posix", "spawner", "storage", "accounting"} <= paths
    texts = {m.text for m in messages}
    assert "Refusing a replayed OAuth callback (state already used)" in texts
    assert "ManilaStorage.init_image: required while ownership_init is on" in texts


def test_the_page_is_in_the_documentation() -> None:
    assert "admin/troubleshooting" in (ROOT / "docs" / "index.md").read_text()


def test_a_message_taken_off_the_page_is_named() -> None:
    page = PAGE.read_text()
    sentence = "This sign-in link has already been used. Please start again from the login page."
    assert sentence in page
    missing = missing_from(page.replace(sentence, "(removed)"), library_messages())
    assert [m.text for m in missing] == [sentence]
    assert missing[0].path == "auth/handlers.py"


def test_a_new_warning_in_the_code_is_named() -> None:
    source = (
        "def spawn(self):\n"
        "    self.log.warning('Quota of %s is nearly used up (%d%%)', self.user.name, used)\n"
        "    self.log.warning('Refusing a replayed OAuth callback (state already used)')\n"
    )
    missing = missing_from(PAGE.read_text(), scan_messages(source, "new.py"))
    assert [m.text for m in missing] == ["Quota of {self.user.name} is nearly used up ({used}%)"]


# -- the scanner, on plain data -------------------------------------------------------


def texts(
    source: str, *, startup_module: bool = False, internal_module: bool = False
) -> list[tuple[str, str]]:
    found = scan_messages(source, startup_module=startup_module, internal_module=internal_module)
    return [(m.kind, m.text) for m in found]


def test_log_calls_fill_their_percent_format_with_the_arguments() -> None:
    source = (
        "log.error('Accounting: could not read session %s: %s', record_id, error)\n"
        "self.log.exception('heartbeat of %s failed', self.user.name)\n"
        "logger.critical(f'{name} is down')\n"
        "warnings.warn('deprecated: use %s' % new)\n"
        "self.log.info('not a warning %s', x)\n"
        "self.log.debug('nor this')\n"
        "handler.error('not a logger')\n"
    )
    assert texts(source) == [
        ("log", "Accounting: could not read session {record_id}: {error}"),
        ("log", "heartbeat of {self.user.name} failed"),
        ("log", "{name} is down"),
        ("log", "deprecated: use {new}"),
    ]


def test_page_sentences_come_from_the_error_helpers_and_user_message() -> None:
    source = (
        "_CONTACT = 'Please contact them.'\n"
        "class QuotaError(UserFacingError):\n"
        "    user_message = 'Your quota is used up. ' + _CONTACT\n"
        "raise http_error(403, f'{who} may not sign in. Ask your VO manager.')\n"
        "raise bad_request('Enter a value.', 'detail for the log')\n"
        "raise SpawnRequestError(500, 'Misconfigured.')\n"
        "raise web.HTTPError(400, 'Bad %s', thing)\n"
        "raise StorageError(detail, user_message='Storage is down.')\n"
        "notices.append(f'Your previous choice {slug!r} is gone.')\n"
        "notice = f'You are no longer in {group}; running as {personal}.'\n"
        "notice = None\n"
    )
    assert texts(source) == [
        ("page", "Your quota is used up. Please contact them."),
        ("page", "{who} may not sign in. Ask your VO manager."),
        ("page", "Enter a value."),
        ("page", "detail for the log"),
        ("page", "Misconfigured."),
        ("page", "Bad {thing}"),
        ("error", "{detail}"),
        ("page", "Storage is down."),
        ("page", "Your previous choice {slug} is gone."),
        ("page", "You are no longer in {group}; running as {personal}."),
    ]


def test_module_constants_and_single_local_assignments_are_filled_in() -> None:
    source = (
        "_SYNTAX = 'the form is vo/sub'\n"
        "def parse(text):\n"
        "    detail = f'Manila {method} {path}'\n"
        "    error = 'one'\n"
        "    if text:\n"
        "        error = 'two'\n"
        "    log.warning('%s', detail)\n"
        "    raise StorageError(f'bad {text}: {error}; {_SYNTAX}')\n"
    )
    assert texts(source) == [
        ("log", "Manila {method} {path}"),
        ("error", "bad {text}: {error}; the form is vo/sub"),  # two values: a placeholder
    ]


def test_value_errors_count_where_they_stop_the_hub() -> None:
    source = (
        "class Spawner:\n"
        "    @validate('quota')\n"
        "    def _quota(self, proposal):\n"
        "        raise TraitError('quota must be >= 0')\n"
        "def helper(value):\n"
        "    raise ValueError(f'{value} is not a number')\n"
        "def check(value):\n"
        "    raise ValueError(f'ManilaStorage.auth_url: {value} is not a URL')\n"
        "def other(self):\n"
        "    raise ValueError(f'{type(self).__name__}.issuer must be set')\n"
        "raise CommandError('printed by a command')\n"
        "raise RuntimeError('a programming error')\n"
    )
    assert texts(source) == [
        ("startup", "quota must be >= 0"),
        ("error", "{value} is not a number"),  # it reaches the log inside another message
        ("startup", "ManilaStorage.auth_url: {value} is not a URL"),
        ("startup", "{class}.issuer must be set"),
    ]
    assert ("startup", "{value} is not a number") in texts(source, startup_module=True)
    internal = texts(source, internal_module=True)  # only its option errors are messages
    assert ("error", "{value} is not a number") not in internal
    assert ("startup", "ManilaStorage.auth_url: {value} is not a URL") in internal


def test_the_library_s_own_errors_are_log_details() -> None:
    source = (
        "class UnknownKeyError(TokenError):\n"
        "    def __init__(self, kid):\n"
        "        super().__init__(f'no key with kid {kid!r}')\n"
        "raise DatabaseUnavailableError(f'database unavailable while {action}')\n"
    )
    assert texts(source) == [
        ("error", "no key with kid {kid}"),
        ("error", "database unavailable while {action}"),
    ]


def test_helpers_building_errors_are_filled_in_from_each_call() -> None:
    source = (
        "def _invalid(detail):\n"
        "    return SpawnRequestError(500, 'No identity.', f'auth_state {detail}')\n"
        "def _text(spec, key):\n"
        "    raise ValueError(f'{key} must be a string')\n"
        "class Settings:\n"
        "    def _error(self, problem, *, hint=''):\n"
        "        return SnippetError(f'{self.snippet}: {problem}: {hint}')\n"
        "    def required(self, variable):\n"
        "        raise self._error(f'{variable} is not set', hint='see the docs')\n"
        "raise _invalid('is missing')\n"
        "_text(spec, 'display_name')\n"
    )
    found = texts(source)
    assert ("page", "auth_state is missing") in found
    assert ("error", "{self.snippet}: {variable} is not set: see the docs") in found
    assert ("error", "display_name must be a string") in found
    assert ("error", "{key} must be a string") in found  # the helper's own message too


def test_a_message_is_listed_when_its_constant_parts_appear_in_order() -> None:
    (message,) = scan_messages("log.warning('Storage for %s failed: %s', user, e)")
    assert message.parts == ("Storage for", "failed:")
    assert not missing_from("- `Storage for {username} failed: {detail}` — what to do", [message])
    assert missing_from("failed: ... Storage for", [message]) == [message]
    assert missing_from("Storage for alice", [message]) == [message]
    wrapped = "`Storage for {user}\n  failed: {detail}`"
    assert not missing_from(wrapped, [message])


@pytest.mark.parametrize(
    ("text", "expected"), [("  a \n b\t c ", "a b c"), ("", ""), ("one", "one")]
)
def test_normalise_collapses_white_space(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_a_message_of_placeholders_only_has_no_parts_and_is_always_listed() -> None:
    (message,) = scan_messages("log.error('%s', detail)")
    assert message.parts == ()
    assert not missing_from("", [message])
