"""The development stack: stand-ins and the local demo, shared by ``make demo``, the tests and
the benchmarks. Never part of the wheel (it needs a source checkout: ``tests/idp/server.mjs`` and
``node_modules``).

* :mod:`devstack.idp`: the loopback OIDC provider (IAM and Check-in shapes);
* :mod:`devstack.kube`, :mod:`devstack.kubelet`: the Kubernetes API stand-in and its fake kubelet;
* :mod:`devstack.stub_server`: one HTTP server answering for every pod the kubelet does not run;
* :mod:`devstack.scale`: hubs holding hundreds of servers on the stand-in (``tests/scale``,
  ``benchmarks/scale.py``);
* :mod:`devstack.openstack` (with :mod:`devstack.openstack_manila`,
  :mod:`devstack.openstack_faults`): a fake Keystone + Manila with fault injection;
* :mod:`devstack.postgres`: a throw-away PostgreSQL server;
* :mod:`devstack.rucio` (with :mod:`devstack.rucio_setup`, run in ``.venv-rucio``): a real
  Rucio server trusting the test IdP, with accounts, OIDC identities and POSIX RSEs;
* :mod:`devstack.hub`, :mod:`devstack.login`, :mod:`devstack.browser`: a real hub and proxy, a
  browserless login driver, Debian's Chromium through Playwright;
* :mod:`devstack.stacks`, :mod:`devstack.configs`: an IdP + hub (+ Kubernetes stand-in) stack
  and the hub configurations the tests' fixtures and the benchmarks start it with;
* :mod:`devstack.pins`: the z2jh hub stacks' pins for ``make test-stacks`` (the test tools
  to add, the check that no pinned version changed);
* ``python -m devstack`` (``make demo``): the local demo hub (see ``docs/admin/demo.md``).
"""
