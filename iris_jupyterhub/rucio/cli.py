"""``iris-jupyterhub rucio identities``: the ``rucio-admin`` lines that onboard a VO.

For every live identity in the identity registry that is in a group of a configured Rucio
instance (``c.RucioTokens.instances`` of ``--config``), prints, under a comment naming
each instance::

    # ral (https://rucio.example.ac.uk)
    rucio-admin identity add --account alice --type OIDC \\
        --id 'SUB=5c1a7e02-..., ISS=https://iris-iam.stfc.ac.uk/' --email alice@example.ac.uk

(with ``--add-accounts``, each preceded by ``rucio-admin account add --type USER ...``), so
a Rucio administrator maps a VO's identities to accounts in one go. The lines are built by
:func:`identity_lines`, a pure function.

The ``ISS=`` value must be the token's ``iss`` exactly, trailing slash included (INDIGO
IAM's ends with ``/``). The registry stores issuers without it, so each registry issuer is
written as the issuer configured for the hub's authenticator (``c.IAMAuthenticator.issuer``
and the others in ``--config``, or ``--issuer``) that it matches. The registry keeps
groups, not roles: an instance rule with a role matches no one here.
"""

from __future__ import annotations

import argparse
import shlex
import string
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from traitlets import TraitError

from ..cli_support import (
    EXIT_ATTENTION,
    EXIT_OK,
    CommandError,
    add_database_arguments,
    config_of,
    database_rule,
    guarded,
)
from ..groups import GroupMembership, membership_from_string
from ..posix.accounts import PosixAccount
from ..posix.errors import RegistryError
from .config import RucioInstance, RucioTokens, account_for, check_account_template

__all__ = ["IdentityLine", "identity_lines", "register"]

AUTHENTICATOR_SECTIONS = ("IAMAuthenticator", "EGICheckinAuthenticator", "OIDCAuthenticator")
DEFAULT_ISSUERS = {"IAMAuthenticator": "https://iris-iam.stfc.ac.uk/"}
EMAIL_FIELDS = ("username", "account", "sub")


@dataclass(frozen=True)
class IdentityLine:
    """One identity to map: the account, the Rucio identity string and the e-mail."""

    account: str
    identity: str
    email: str
    instance: str

    def command(self) -> str:
        """The ``rucio-admin identity add`` line (shell-quoted)."""
        return (
            f"rucio-admin identity add --account {shlex.quote(self.account)} --type OIDC "
            f"--id {shlex.quote(self.identity)} --email {shlex.quote(self.email)}"
        )

    def account_command(self) -> str:
        """The ``rucio-admin account add`` line that creates the account first."""
        return (
            f"rucio-admin account add --type USER --email {shlex.quote(self.email)} "
            f"{shlex.quote(self.account)}"
        )


def _memberships(account: PosixAccount) -> list[GroupMembership]:
    found = []
    for group in account.groups:
        if group.canonical:
            try:
                found.append(membership_from_string(group.canonical))
            except ValueError:
                continue
    return found


def check_email_template(template: str) -> str:
    """``template`` if it is a usable ``--email`` template, else ``CommandError``."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise CommandError(f"--email {template!r} is not a valid template: {e}") from None
    unknown = [f for f in fields if f not in EMAIL_FIELDS]
    if unknown or "@" not in template:
        raise CommandError(
            f"--email {template!r} must be an address template using only "
            + ", ".join(f"{{{f}}}" for f in EMAIL_FIELDS)
            + ", e.g. '{username}@example.ac.uk'"
        )
    return template


def identity_lines(
    accounts: Iterable[PosixAccount],
    instances: Sequence[RucioInstance],
    issuers: Iterable[str],
    email: str,
    default_account: str = "{username}",
) -> tuple[list[IdentityLine], list[str]]:
    """The identities to map, one per (instance, account, identity) in the order of
    ``instances``, and warnings for the admin.

    ``issuers`` are the issuer URLs exactly as the provider writes ``iss``; a registry
    issuer matching none of them (ignoring a trailing ``/``) is used as stored, with a
    warning. ``default_account`` renders the account of instances whose ``account`` rule
    is the identity's default (Rucio needs a name to attach the identity to).
    """
    exact = {issuer.rstrip("/"): issuer for issuer in issuers}
    lines: list[IdentityLine] = []
    warnings: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    unmatched: set[str] = set()
    for account in accounts:
        if account.deleted:
            continue
        memberships = _memberships(account)
        issuer = exact.get(account.key.issuer)
        if issuer is None:
            issuer = account.key.issuer
            unmatched.add(issuer)
        identity = f"SUB={account.key.subject}, ISS={issuer}"
        for instance in instances:
            if not instance.offered_to(memberships):
                continue
            rule = instance if instance.account else _with_account(instance, default_account)
            name = account_for(rule, {"posix": {"username": account.username}}, account.username)
            if name is None:
                warnings.append(f"{account.describe()}: no valid Rucio account name, skipped")
                continue
            if (instance.name, name, identity) in seen:
                continue
            seen.add((instance.name, name, identity))
            mail = email.format(username=account.username, account=name, sub=account.key.subject)
            lines.append(IdentityLine(name, identity, mail, instance.name))
    order = {instance.name: i for i, instance in enumerate(instances)}
    lines.sort(key=lambda line: order[line.instance])
    warnings += [
        f"issuer {issuer!r} is not configured here: check that ISS= matches the tokens' "
        "iss exactly (trailing '/'), or pass --issuer"
        for issuer in sorted(unmatched)
    ]
    for instance in instances:
        if any(rule.role is not None for rule in instance.groups):
            warnings.append(
                f"instance {instance.name!r}: rules with a role match no one here "
                "(the registry records groups without roles)"
            )
    return lines, warnings


def _with_account(instance: RucioInstance, template: str) -> RucioInstance:
    return replace(instance, account=template)


def _configured_issuers(config: Any, given: Sequence[str]) -> list[str]:
    issuers = list(given)
    for section in AUTHENTICATOR_SECTIONS:
        value = config[section].get("issuer") if section in config else None
        if isinstance(value, str) and value:
            issuers.append(value)
    if not issuers:
        issuers.extend(DEFAULT_ISSUERS.values())
    return issuers


def cmd_identities(args: argparse.Namespace) -> int:
    """Print the ``rucio-admin`` lines; exit 1 when there is nothing to print."""
    from ..posix.cli import open_registry  # noqa: PLC0415

    config = config_of(args)
    try:
        instances = RucioTokens(config=config).parsed_instances()
    except (TraitError, ValueError) as e:
        raise CommandError(f"invalid RucioTokens configuration: {e}") from None
    if args.instance:
        instances = [i for i in instances if i.name in args.instance]
    if not instances:
        raise CommandError(
            "no Rucio instance to onboard: give --config the hub's configuration with "
            "c.RucioTokens.instances (and --instance names that exist there)"
        )
    email = check_email_template(args.email)
    try:
        check_account_template(args.account)
    except ValueError as e:
        raise CommandError(f"--account: {e}") from None
    with open_registry(args) as registry:
        accounts = list(registry.iter_accounts())
    lines, warnings = identity_lines(
        accounts, instances, _configured_issuers(config, args.issuer or []), email, args.account
    )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    hosts = {instance.name: instance.rucio_host for instance in instances}
    for i, line in enumerate(lines):
        if i == 0 or lines[i - 1].instance != line.instance:
            print(f"# {line.instance} ({hosts[line.instance]})")
        if args.add_accounts:
            print(line.account_command())
        print(line.command())
    print(f"{len(lines)} identities for {len(instances)} instance(s)", file=sys.stderr)
    return EXIT_OK if lines else EXIT_ATTENTION


_DESCRIPTION = f"""\
Print the rucio-admin commands that map the registry's identities, for members of the
groups of c.RucioTokens.instances (--config), to Rucio accounts.

{database_rule()}"""


def register(groups: Any) -> None:
    """Add the ``rucio`` command group to the top-level sub-parsers ``groups``."""
    rucio = groups.add_parser(
        "rucio",
        help="Rucio onboarding",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = rucio.add_subparsers(
        title="commands", dest="rucio_command", metavar="COMMAND", required=True
    )
    parser = commands.add_parser(
        "identities",
        help="Print rucio-admin identity add lines for a VO.",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 lines printed, 1 no identity to map, 3 error",
    )
    add_database_arguments(
        parser,
        "the hub's jupyterhub_config.py: c.RucioTokens.instances, the authenticator's "
        "issuer, c.IdentityRegistry.* and c.JupyterHub.db_url",
    )
    parser.add_argument(
        "--email",
        required=True,
        metavar="TEMPLATE",
        help="e-mail of each identity (rucio-admin needs one), e.g. '{username}@example.ac.uk'; "
        "may use {username}, {account}, {sub}",
    )
    parser.add_argument(
        "--instance", action="append", metavar="NAME", help="only this instance (repeatable)"
    )
    parser.add_argument(
        "--issuer",
        action="append",
        metavar="URL",
        help="issuer exactly as in the tokens' iss (repeatable; default: from --config)",
    )
    parser.add_argument(
        "--account",
        default="{username}",
        metavar="TEMPLATE",
        help="account of instances without an account rule (default {username}, the "
        "POSIX login name)",
    )
    parser.add_argument(
        "--add-accounts",
        action="store_true",
        help="also print 'rucio-admin account add' before each identity",
    )
    parser.set_defaults(
        handler=guarded(
            cmd_identities,
            lambda args: f"iris-jupyterhub rucio {args.rucio_command}",
            (RegistryError,),
        )
    )
