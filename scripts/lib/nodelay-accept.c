/* Preloaded into nginx by scripts/lib/nchan.sh when NCHAN_NODELAY=1: sets
 * TCP_NODELAY on every accepted socket. nginx sets it on a connection only
 * when it turns keep-alive, so nchan's WebSocket subscribers otherwise run
 * with Nagle's algorithm, which holds a small frame while an earlier one
 * is unacknowledged: fewer, larger segments (less CPU per message) for
 * more latency. The hub and the floor set TCP_NODELAY; this lets nchan be
 * measured under the same latency policy (docs/BENCHMARKS.md, "Nagle"). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
static void nodelay(int fd) {
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
int accept4(int fd, struct sockaddr *a, socklen_t *l, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, a, l, flags);
    nodelay(c);
    return c;
}
int accept(int fd, struct sockaddr *a, socklen_t *l) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    int c = real(fd, a, l);
    nodelay(c);
    return c;
}
