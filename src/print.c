/* print.c — formatted output that never allocates: tide reports misuse from
 * inside malloc and free, where stdio (which may call malloc) is off limits.
 * Supports %s %d %ld %zu %zx %lu %lx %x %p %c %%, no widths.  Its names
 * are the report primitives every file uses (tidei_printf, tidei_warn,
 * tidei_fatal, tidei_misuse, tidei_open_report).  Takes no lock. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tide_internal.h"

typedef struct out_buf {
    char data[512];              /* pending bytes */
    size_t len;                  /* bytes in data */
    int fd;                      /* where they go */
    bool failed;                 /* a write failed */
} out_buf_t;

static void out_flush(out_buf_t *o)
{
    size_t done = 0;
    while (done < o->len) {
        ssize_t w = write(o->fd, o->data + done, o->len - done);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            o->failed = true;
            break;
        }
        done += (size_t)w;
    }
    o->len = 0;
}

static void out_char(out_buf_t *o, char c)
{
    if (o->len == sizeof o->data)
        out_flush(o);
    o->data[o->len++] = c;
}

static void out_str(out_buf_t *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        out_char(o, *s++);
}

static void out_uint(out_buf_t *o, unsigned long v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        out_char(o, tmp[--n]);
}

static void out_format(out_buf_t *o_, const char *fmt, va_list ap)
{
#define o (*o_)
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            out_char(&o, *f);
            continue;
        }
        f++;
        bool is_long = false;
        while (*f == 'l' || *f == 'z') {
            is_long = true;
            f++;
        }
        switch (*f) {
        case 's': out_str(&o, va_arg(ap, const char *)); break;
        case 'c': out_char(&o, (char)va_arg(ap, int)); break;
        case 'd': {
            long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                out_char(&o, '-');
                out_uint(&o, 0UL - (unsigned long)v, 10);
            } else {
                out_uint(&o, (unsigned long)v, 10);
            }
            break;
        }
        case 'u': out_uint(&o, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10); break;
        case 'x': out_uint(&o, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16); break;
        case 'p':
            out_str(&o, "0x");
            out_uint(&o, (unsigned long)(uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%': out_char(&o, '%'); break;
        case '\0': f--; break;
        default: out_char(&o, '%'); out_char(&o, *f); break;
        }
    }
#undef o
}

int tidei_vprintf(int fd, const char *fmt, va_list ap)
{
    int saved = errno;
    out_buf_t o;
    o.len = 0;
    o.fd = fd;
    o.failed = false;
    out_format(&o, fmt, ap);
    out_flush(&o);
    errno = saved;
    return o.failed ? -1 : 0;
}

int tidei_printf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tidei_vprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

void tidei_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tidei_vprintf(2, fmt, ap);
    va_end(ap);
}

void tidei_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tidei_vprintf(2, fmt, ap);
    va_end(ap);
    abort();
}

/* Writes `tide: OP(ADDR): WHAT`, then what detail adds (written once the
 * rest is out, so a detail that crashes still leaves the report), the end
 * of the line, and aborts. */
__attribute__((noreturn)) static void misuse(const char *op, const void *p, tidei_detail_fn detail, const char *what,
                                             va_list ap)
{
    out_buf_t o;
    o.len = 0;
    o.fd = 2;
    o.failed = false;
    out_str(&o, "tide: ");
    out_str(&o, op);
    out_str(&o, "(0x");
    out_uint(&o, (unsigned long)(uintptr_t)p, 16);
    out_str(&o, "): ");
    out_format(&o, what, ap);
    if (detail) {
        out_flush(&o);
        char more[1200];
        detail(op, p, more, sizeof more);
        out_str(&o, more);
    }
    out_char(&o, '\n');
    out_flush(&o);
    abort();
}

/* Reports a misuse in one line, `tide: OP(ADDR): WHAT`, and aborts.  Called
 * with no lock held (abort runs no atexit handlers, but a SIGABRT handler may
 * call malloc). */
void tidei_misuse(const char *op, const void *p, const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    misuse(op, p, NULL, what, ap);
}

void tidei_misuse_detailed(const char *op, const void *p, tidei_detail_fn detail, const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    misuse(op, p, detail, what, ap);
}

void tidei_assert_fail(const char *expr, const char *file, int line)
{
    tidei_fatal("tide: internal error: assertion `%s' failed at %s:%d\n", expr, file, line);
}

/* Regular files tide created in this run (tidei_open_report), the only
 * ones it truncates: their device and inode. */
static struct {
    dev_t dev;                   /* the file's device */
    ino_t ino;                   /* its inode */
    _Atomic bool ready;          /* dev and ino are filled in */
} created[TIDE_REPORT_FILES];
static _Atomic unsigned n_created; /* entries claimed */

static bool was_created(const struct stat *st)
{
    unsigned n = atomic_load_explicit(&n_created, acquire);
    for (unsigned i = 0; i < n && i < TIDE_REPORT_FILES; i++)
        if (atomic_load_explicit(&created[i].ready, acquire) && created[i].dev == st->st_dev &&
            created[i].ino == st->st_ino)
            return true;
    return false;
}

/* Opens the report file at path for writing, appended to or truncated,
 * without following a symlink at its end (O_NOFOLLOW).  A regular file is
 * truncated only if tide created it in this run: otherwise the open fails
 * with EEXIST, so that a file planted under the name (in /tmp, say) is
 * never destroyed.  Appending writes to any existing regular file.  A
 * device or a pipe is written as it is.  In secure mode (AT_SECURE) no
 * file is opened: EPERM.  Never allocates, async-signal-safe.  Returns the
 * fd, or -1 with errno set. */
int tidei_open_report(const char *path, bool append)
{
    if (tidei_secure) {
        errno = EPERM;
        return -1;
    }
    int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (append ? O_APPEND : 0);
    int fd = open(path, flags | O_CREAT | O_EXCL, 0644);
    struct stat st;
    if (fd >= 0) {
        if (fstat(fd, &st) == 0) {
            unsigned i = atomic_fetch_add_explicit(&n_created, 1, acq_rel);
            if (i < TIDE_REPORT_FILES) {
                created[i].dev = st.st_dev;
                created[i].ino = st.st_ino;
                atomic_store_explicit(&created[i].ready, true, release);
            }
        }
        return fd;
    }
    if (errno != EEXIST)
        return -1;
    /* there already: O_NONBLOCK so that a pipe with no reader does not hang */
    fd = open(path, flags | O_NONBLOCK);
    if (fd < 0)
        return -1;
    int err = 0;
    if (fstat(fd, &st) != 0)
        err = errno;
    else if (S_ISREG(st.st_mode) && !append && !was_created(&st))
        err = EEXIST;
    else if (S_ISREG(st.st_mode) && !append && ftruncate(fd, 0) != 0)
        err = errno;
    else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
        err = EINVAL;
    else if (fcntl(fd, F_SETFL, flags) != 0)
        err = errno;
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Opens the report file named by pattern (%p: the pid, %n: seq) with
 * tidei_open_report; an empty pattern is stderr.  Never allocates,
 * async-signal-safe.  Returns the fd, or -1 with errno set. */
int tidei_open_output(const char *pattern, unsigned seq, bool append)
{
    if (!pattern[0])
        return 2;
    char buf[TIDE_PATH_MAX + 64];
    size_t o = 0;
    for (const char *p = pattern; *p && o + 24 < sizeof buf; p++) {
        if (p[0] == '%' && (p[1] == 'p' || p[1] == 'n')) {
            unsigned long v = p[1] == 'p' ? (unsigned long)getpid() : seq;
            char d[24];
            int k = 0;
            do d[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
            while (k)
                buf[o++] = d[--k];
            p++;
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = 0;
    return tidei_open_report(buf, append);
}

/* Installs fn on signal sig for the option named `what` (stats_signal,
 * prof_signal): a handler that writes a report.  Warns if it cannot. */
void tidei_report_on_signal(long sig, void (*fn)(int), const char *what)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction((int)sig, &sa, NULL) != 0)
        tidei_warn("tide: cannot handle signal %ld for %s (errno %d)\n", sig, what, errno);
}
