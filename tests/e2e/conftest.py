"""Whole-stack fixtures: the real IdP (node oidc-provider), JupyterHub and proxy.

The stack itself (:class:`~devstack.stacks.Stack`, :func:`~devstack.stacks.start_stack`) and the
hub configurations (:mod:`devstack.configs`) live in ``devstack``; these fixtures start and stop
them around the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devstack.stacks import Stack, restore_idp, start_stack


@pytest.fixture(scope="module")
def stack_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def make(provider: str, hub_config: str, hub_env: dict[str, str] | None = None) -> Stack:
        stack = start_stack(tmp_path_factory.mktemp(provider), provider, hub_config, hub_env)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture(autouse=True)
def _restore_idp_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """In modules with a ``stack`` fixture, undo each test's changes at the IdP."""
    yield
    if "stack" in request.fixturenames:
        restore_idp(request.getfixturevalue("stack"))
