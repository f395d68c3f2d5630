# IRISSpawner with group-gated profiles (and a GPU profile), from the environment or z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/30-profiles.py or
# pasted into `hub.extraConfig`. Needs a login file (10-/11-) and the registry (20-).
#
#   variable (values key under custom.iris)   required  meaning
#   IRIS_PROFILES_FILE (profilesFile)          no  a YAML file holding the profile list
#   IRIS_PROFILES (profiles)                   no  the profile list itself (YAML in the variable)
#   IRIS_GPU_GROUPS (gpuGroups)                no  groups offered the default list's GPU profile
#   IRIS_GPU_IMAGE (gpuImage)                  no  image of the default GPU profile
#
# The profile list is KubeSpawner's format with IRIS's `allowed_groups`/`required_groups`
# and `resources: {cpu, memory, gpu}` (docs/admin/spawner.md). Give a file or a list, not
# both. With neither, a list set elsewhere (z2jh `singleuser.profileList`, or
# c.IRISSpawner/c.KubeSpawner.profile_list) is kept; with none at all the default list is
# used: "Standard" (2 CPUs, 4 GiB) for everyone and, when IRIS_GPU_GROUPS is set, "GPU"
# (4 CPUs, 16 GiB, 1 GPU) for those groups only. Every setting: docs/admin/snippets.md.
from iris_jupyterhub.snippets import SnippetSettingError, SnippetSettings, default_profile_list

s = SnippetSettings(globals(), "30-profiles.py")
c = s.config

c.JupyterHub.spawner_class = "iris"
profiles_file = s.yaml_file("IRIS_PROFILES_FILE", "profilesFile", list, "the profile list")
profiles = s.value("IRIS_PROFILES", "profiles", list, help="the profile list")
if profiles_file is not None and profiles is not None:
    raise SnippetSettingError(
        "30-profiles.py: both a profile file (IRIS_PROFILES_FILE or custom.iris.profilesFile) "
        "and a profile list (IRIS_PROFILES or custom.iris.profiles) are given; keep one"
    )
if profiles_file is not None:
    c.IRISSpawner.profile_list = profiles_file
elif profiles is not None:
    c.IRISSpawner.profile_list = profiles
elif not any(c[section].get("profile_list") for section in ("IRISSpawner", "KubeSpawner")):
    c.IRISSpawner.profile_list = default_profile_list(
        s.groups("IRIS_GPU_GROUPS", "gpuGroups"), s.optional("IRIS_GPU_IMAGE", "gpuImage")
    )
