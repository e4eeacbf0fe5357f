/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: the page free tracepoint (a no-op here). */
#ifndef _TRACE_KMEM_H
#define _TRACE_KMEM_H

struct page;

static inline void trace_mm_page_free(struct page *page, unsigned int order)
{
}

#endif /* _TRACE_KMEM_H */
