/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: the debugging hooks a freed page passes through. */
#ifndef _LINUX_KASAN_H
#define _LINUX_KASAN_H

struct page;

static inline void kasan_free_pages(struct page *page, unsigned int order)
{
}

static inline void arch_free_page(struct page *page, int order)
{
}

static inline void kernel_map_pages(struct page *page, int numpages, int enable)
{
}

#endif /* _LINUX_KASAN_H */
