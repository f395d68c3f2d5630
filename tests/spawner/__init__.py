"""Spawner tests: a real hub with KubeSpawner (or IRISSpawner) against the kube stand-in."""
