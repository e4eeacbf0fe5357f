/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: bit operations on page->flags (not atomic here). */
#ifndef _LINUX_BITOPS_H
#define _LINUX_BITOPS_H

#include <linux/types.h>

#define BIT(nr)		(1UL << (nr))

static inline int test_bit(int nr, const unsigned long *addr)
{
	return (*addr >> nr) & 1;
}

static inline void set_bit(int nr, unsigned long *addr)
{
	*addr |= BIT(nr);
}

static inline void clear_bit(int nr, unsigned long *addr)
{
	*addr &= ~BIT(nr);
}

static inline int test_and_set_bit(int nr, unsigned long *addr)
{
	int old = test_bit(nr, addr);

	set_bit(nr, addr);
	return old;
}

static inline int test_and_clear_bit(int nr, unsigned long *addr)
{
	int old = test_bit(nr, addr);

	clear_bit(nr, addr);
	return old;
}

#endif /* _LINUX_BITOPS_H */
