/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: compiler annotations, in the kernel's shape. */
#ifndef _LINUX_COMPILER_H
#define _LINUX_COMPILER_H

#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)
#define __always_inline		inline __attribute__((always_inline))
#define noinline		__attribute__((noinline))
#define __maybe_unused		__attribute__((unused))
#define __read_mostly
#define READ_ONCE(x)		(*(volatile typeof(x) *)&(x))

#endif /* _LINUX_COMPILER_H */
