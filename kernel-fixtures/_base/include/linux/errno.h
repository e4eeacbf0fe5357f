/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: the error numbers mm/ returns. */
#ifndef _LINUX_ERRNO_H
#define _LINUX_ERRNO_H

#define EIO		5
#define ENXIO		6
#define EAGAIN		11
#define ENOMEM		12
#define EBUSY		16
#define EINVAL		22

#endif /* _LINUX_ERRNO_H */
