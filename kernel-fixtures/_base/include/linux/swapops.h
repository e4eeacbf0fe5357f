/* SPDX-License-Identifier: GPL-2.0 */
/*
 * patchgen fixture (v4.x shape): the hwpoison helpers of <linux/swapops.h>.
 * Like the kernel's, this header includes no mm headers: its users have
 * included <linux/mm.h> first.
 */
#ifndef _LINUX_SWAPOPS_H
#define _LINUX_SWAPOPS_H

#ifdef CONFIG_MEMORY_FAILURE

extern atomic_long_t num_poisoned_pages __read_mostly;

/*
 * Set PG_hwpoison and tell whether it was already set.
 */
static inline bool test_set_page_hwpoison(struct page *page)
{
	return TestSetPageHWPoison(page);
}

static inline void num_poisoned_pages_inc(void)
{
	atomic_long_inc(&num_poisoned_pages);
}

static inline void num_poisoned_pages_dec(void)
{
	atomic_long_dec(&num_poisoned_pages);
}

static inline void num_poisoned_pages_add(long num)
{
	atomic_long_add(num, &num_poisoned_pages);
}

#else

static inline bool test_set_page_hwpoison(struct page *page)
{
	return false;
}

static inline void num_poisoned_pages_inc(void)
{
}

#endif

#endif /* _LINUX_SWAPOPS_H */
