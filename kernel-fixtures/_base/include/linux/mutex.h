/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: sleeping locks. */
#ifndef __LINUX_MUTEX_H
#define __LINUX_MUTEX_H

#include <linux/atomic.h>

struct mutex {
	atomic_long_t owner;
};

#define __MUTEX_INITIALIZER(lockname) { { 0 } }
#define DEFINE_MUTEX(mutexname) \
	struct mutex mutexname = __MUTEX_INITIALIZER(mutexname)

void mutex_lock(struct mutex *lock);
void mutex_unlock(struct mutex *lock);

#endif /* __LINUX_MUTEX_H */
