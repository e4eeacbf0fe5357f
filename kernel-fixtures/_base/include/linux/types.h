/* SPDX-License-Identifier: GPL-2.0 */
/*
 * patchgen fixture: the few basic types the fixture mm/ files use.
 * Written for patchgen's tests in the shape of the kernel's header;
 * it is not the kernel's header.
 */
#ifndef _LINUX_TYPES_H
#define _LINUX_TYPES_H

#define NULL ((void *)0)

typedef _Bool bool;
enum {
	false	= 0,
	true	= 1
};

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long size_t;
typedef unsigned long pgoff_t;
typedef unsigned int gfp_t;

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	long counter;
} atomic_long_t;

struct list_head {
	struct list_head *next, *prev;
};

#endif /* _LINUX_TYPES_H */
