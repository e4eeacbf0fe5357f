/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: printk, BUG and friends, in the kernel's shape. */
#ifndef _LINUX_KERNEL_H
#define _LINUX_KERNEL_H

#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/errno.h>

int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dump_stack(void);
void panic(const char *fmt, ...) __attribute__((noreturn));

#define KERN_ALERT	"\001" "1"
#define KERN_INFO	"\001" "6"
#define pr_alert(fmt, ...)	printk(KERN_ALERT fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)	printk(KERN_INFO fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...)	printk(KERN_ALERT fmt, ##__VA_ARGS__)

#define BUG()		__builtin_trap()
#define BUG_ON(cond)	do { if (unlikely(cond)) BUG(); } while (0)
#define WARN_ON(cond)	({ int __ret = !!(cond); if (unlikely(__ret)) dump_stack(); unlikely(__ret); })
#define WARN_ON_ONCE(cond)	WARN_ON(cond)

#define EXPORT_SYMBOL(sym)	extern typeof(sym) sym
#define EXPORT_SYMBOL_GPL(sym)	extern typeof(sym) sym

#define offsetof(type, member)	__builtin_offsetof(type, member)
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif /* _LINUX_KERNEL_H */
