/* print.c — formatted output that never allocates: tide reports misuse from
 * inside malloc and free, where stdio (which may call malloc) is off limits.
 * Supports %s %d %ld %zu %zx %lu %lx %x %p %c %%, no widths. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
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

/* Opens the report file named by pattern for writing (%p: the pid, %n:
 * seq), appended to or truncated; an empty pattern is stderr.  Never
 * allocates, async-signal-safe.  Returns the fd, or -1 with errno set. */
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
    return open(buf, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
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
