"""Facts and tools of a kernel tree: Kconfig, checkpatch, a private workspace, the Debian tree."""
