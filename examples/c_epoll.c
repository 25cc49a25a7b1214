/*
 * The floor of any HTTP server on this kernel, for side-by-side runs
 * (scripts/cpu-per-request.sh, row "c"): one thread, epoll (level-triggered),
 * non-blocking sockets, and for every request head (found by its blank line, no
 * validation at all) a fixed "200 Hello, World!" with a Date refreshed once a
 * second; pipelined requests answered in one write. What any real server costs
 * beyond this is the price of parsing, validating and being robust.
 *
 *   cc -O2 -o target/c_epoll examples/c_epoll.c && taskset -c 0 target/c_epoll 127.0.0.1:0
 *
 * prints "listening on http://ADDR" like gvhttpd. Not part of the gvhttpd binary.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 8192
#define MAXFD 65536

struct conn { int filled; char in[BUF]; };
static struct conn *conns[MAXFD];

static const char HEAD[] = "HTTP/1.1 200 OK\r\nServer: c\r\nDate: ";
static const char TAIL[] = "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
static char date[30];
static time_t date_at;

static void refresh_date(void) {
    time_t now = time(NULL);
    if (now != date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_at = now;
    }
}

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd]);
    conns[fd] = NULL;
}

static void serve(int ep, int fd) {
    static char out[BUF * 8];
    struct conn *c = conns[fd];
    ssize_t n = read(fd, c->in + c->filled, BUF - c->filled);
    if (n <= 0) { drop(ep, fd); return; }
    c->filled += n;
    refresh_date();
    size_t o = 0;
    char *p = c->in, *end = c->in + c->filled, *e;
    while ((e = memmem(p, end - p, "\r\n\r\n", 4)) && o + 160 < sizeof out) {
        memcpy(out + o, HEAD, sizeof HEAD - 1); o += sizeof HEAD - 1;
        memcpy(out + o, date, 29); o += 29;
        memcpy(out + o, TAIL, sizeof TAIL - 1); o += sizeof TAIL - 1;
        p = e + 4;
    }
    c->filled = end - p;
    memmove(c->in, p, c->filled);
    if (c->filled == BUF) { drop(ep, fd); return; } /* a head larger than the buffer */
    for (size_t w = 0; w < o;) {
        ssize_t k = write(fd, out + w, o - w);
        if (k <= 0) { drop(ep, fd); return; } /* a full send buffer: not this floor's job */
        w += k;
    }
}

int main(int argc, char **argv) {
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:8082";
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon - addr >= (long)sizeof host) { fprintf(stderr, "usage: c_epoll IP:PORT\n"); return 2; }
    memcpy(host, addr, colon - addr); host[colon - addr] = 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", addr); return 2; }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1024)) { perror("listen"); return 1; }
    socklen_t len = sizeof sa;
    getsockname(l, (struct sockaddr *)&sa, &len);
    printf("listening on http://%s:%d\n", host, ntohs(sa.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = l }, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != l) { serve(ep, fd); continue; }
            int c;
            while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                if (c >= MAXFD || !(conns[c] = calloc(1, sizeof(struct conn)))) { close(c); continue; }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
            }
        }
    }
}
