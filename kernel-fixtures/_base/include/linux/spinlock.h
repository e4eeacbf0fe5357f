/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: spinlocks (no real locking needed here). */
#ifndef _LINUX_SPINLOCK_H
#define _LINUX_SPINLOCK_H

typedef struct {
	int locked;
} spinlock_t;

#define spin_lock_irqsave(lock, flags)	do { (flags) = 0; (lock)->locked = 1; } while (0)
#define spin_unlock_irqrestore(lock, flags) do { (void)(flags); (lock)->locked = 0; } while (0)

#endif /* _LINUX_SPINLOCK_H */
