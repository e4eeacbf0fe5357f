"""What hwpoison-put-last gives `patchgen check --build` and `patchgen verify`.

check --build: tinyconfig + check-build.config, and the same again with
CONFIG_MEMORY_FAILURE off (the series adds a !CONFIG_MEMORY_FAILURE stub,
which must compile too); a fixture tree is compiled with and without
-DCONFIG_MEMORY_FAILURE.

verify: guest/soft_offline_test.c soft-offlines pages through madvise()
(and, with --stress, under memory pressure and compaction) and reports
each check in the engine's protocol; guest/verify.config is the kernel it
needs, guest/verify-debug.config the kernel a mm reviewer tests with,
guest/verify-movable.config that kernel with zram (a movable non-LRU
page in the block the guest offlines).
"""

from pathlib import Path

from patchgen.engine.rule import CheckBuild, LogCount, VerifyConfig, VerifyRecipe

HERE = Path(__file__).resolve().parent
GUEST = HERE / "guest"

CHECK_BUILD = CheckBuild(
    fragment=HERE / "check-build.config",
    toggle="CONFIG_MEMORY_FAILURE",
    toggle_dependents=("CONFIG_HWPOISON_INJECT",))

VERIFY_FRAGMENT = GUEST / "verify.config"
DEBUG_FRAGMENT = GUEST / "verify-debug.config"
MOVABLE_FRAGMENT = GUEST / "verify-movable.config"

VERIFY = VerifyRecipe(
    program=GUEST / "soft_offline_test.c",
    configs={
        "default": VerifyConfig((VERIFY_FRAGMENT,)),
        "debug": VerifyConfig(
            (VERIFY_FRAGMENT, DEBUG_FRAGMENT),
            "DEBUG_VM, page_owner, memcg, THP, SLUB_DEBUG, memory hotplug, "
            "two CPUs; adds the race with unpoison, memory offline and the "
            "sysfs interface"),
        "movable": VerifyConfig(
            (VERIFY_FRAGMENT, DEBUG_FRAGMENT, MOVABLE_FRAGMENT),
            "the debug config plus zram: poisoned zsmalloc pages (movable, "
            "not LRU) in the memory block it offlines; unmodified 6.1.192 "
            "fails it (offline_pages() loops on the poisoned page)"),
    },
    lava_suite="patchgen-soft-offline",
    kcidb_test="patchgen.soft_offline",
    summary="a soft-offline test",
    counts=(LogCount(
        "soft_offlined_pages", "soft offlines logged by the kernel",
        # 5.x/6.x: "Soft offlining pfn 0x1a0b at process virtual address
        # 0x7f..", 4.x: "Soft offlining page 0x1a0b at 0x7f...".
        (r"Soft offlining pfn (0x[0-9a-fA-F]+) at process virtual address",
         r"Soft offlining page (0x[0-9a-fA-F]+) at (0x[0-9a-fA-F]+)")),),
    # Soft offline never kills anyone; memory_failure() does, when a
    # process touches a page it poisoned (6.1: "MCE: Killing ...", 4.x:
    # "Memory failure: 0x...: Killing ...").
    kernel_problems=(("memory-failure kill",
                      r"Killing \S+ due to hardware memory corruption"),),
)
