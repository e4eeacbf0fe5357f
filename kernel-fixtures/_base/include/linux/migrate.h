/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: page migration's interface. */
#ifndef _LINUX_MIGRATE_H
#define _LINUX_MIGRATE_H

#include <linux/types.h>

struct page;

typedef struct page *new_page_t(struct page *page, unsigned long private,
				int **reason);
typedef void free_page_t(struct page *page, unsigned long private);

#define MIGRATEPAGE_SUCCESS		0

enum migrate_mode {
	MIGRATE_ASYNC,
	MIGRATE_SYNC_LIGHT,
	MIGRATE_SYNC,
};

enum migrate_reason {
	MR_COMPACTION,
	MR_MEMORY_FAILURE,
	MR_MEMORY_HOTPLUG,
	MR_SYSCALL,
	MR_MEMPOLICY_MBIND,
	MR_NUMA_MISPLACED,
	MR_CMA,
	MR_TYPES
};

#define MPOL_MF_MOVE_ALL	(1 << 2)

int migrate_pages(struct list_head *l, new_page_t new, free_page_t free,
		  unsigned long private, enum migrate_mode mode, int reason);
void putback_movable_pages(struct list_head *l);
int isolate_lru_page(struct page *page);
void putback_lru_page(struct page *page);

#endif /* _LINUX_MIGRATE_H */
