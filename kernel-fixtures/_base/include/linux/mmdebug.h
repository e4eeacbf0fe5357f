/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: VM_BUG_ON and friends. */
#ifndef LINUX_MM_DEBUG_H
#define LINUX_MM_DEBUG_H 1

#include <linux/kernel.h>

struct page;

void dump_page(struct page *page, const char *reason);

#ifdef CONFIG_DEBUG_VM
#define VM_BUG_ON(cond) BUG_ON(cond)
#define VM_BUG_ON_PAGE(cond, page)					\
	do {								\
		if (unlikely(cond)) {					\
			dump_page(page, "VM_BUG_ON_PAGE(" #cond ")");	\
			BUG();						\
		}							\
	} while (0)
#else
#define VM_BUG_ON(cond) do { (void)sizeof(cond); } while (0)
#define VM_BUG_ON_PAGE(cond, page) VM_BUG_ON(cond)
#endif

#endif /* LINUX_MM_DEBUG_H */
