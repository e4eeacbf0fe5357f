/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: atomic operations (no real atomicity needed here). */
#ifndef _LINUX_ATOMIC_H
#define _LINUX_ATOMIC_H

#include <linux/types.h>

static inline int atomic_read(const atomic_t *v)
{
	return v->counter;
}

static inline void atomic_set(atomic_t *v, int i)
{
	v->counter = i;
}

static inline void atomic_inc(atomic_t *v)
{
	v->counter++;
}

static inline int atomic_dec_and_test(atomic_t *v)
{
	return --v->counter == 0;
}

static inline int atomic_inc_not_zero(atomic_t *v)
{
	return v->counter ? ++v->counter : 0;
}

static inline void atomic_long_inc(atomic_long_t *v)
{
	v->counter++;
}

static inline void atomic_long_dec(atomic_long_t *v)
{
	v->counter--;
}

static inline void atomic_long_add(long i, atomic_long_t *v)
{
	v->counter += i;
}

#endif /* _LINUX_ATOMIC_H */
