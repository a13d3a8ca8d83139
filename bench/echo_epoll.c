/*
 * The C reference of the echo benchmarks: one thread, one level-triggered
 * epoll set, non-blocking sockets, no library.  What a server costs per
 * message when nothing but the kernel's work is left.
 *
 * Usage: echo_epoll FD SECONDS
 *
 * FD is a listening socket inherited from the process that started it
 * (bench/workloads.py, which has already told the load generator its port);
 * the server ends itself after SECONDS should nobody end it first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUFFER_SIZE 4096

static void drop(int epoll_fd, int fd)
{
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Accept every connection waiting, each one non-blocking and watched for reading. */
static int accept_all(int epoll_fd, int listener)
{
    for (;;) {
        int conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
                return 0;
            perror("echo_epoll: accept4");
            return -1;
        }
        struct epoll_event event = {.events = EPOLLIN, .data.fd = conn};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, conn, &event) < 0) {
            perror("echo_epoll: epoll_ctl");
            return -1;
        }
    }
}

/* Send all of buffer; a full send buffer is waited out (a client that stops reading stalls only here). */
static int send_all(int fd, const char *buffer, ssize_t size)
{
    while (size > 0) {
        ssize_t sent = write(fd, buffer, (size_t)size);
        if (sent >= 0) {
            buffer += sent;
            size -= sent;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd writable = {.fd = fd, .events = POLLOUT};
            poll(&writable, 1, -1);
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

static void echo(int epoll_fd, int fd, char *buffer)
{
    ssize_t got = read(fd, buffer, BUFFER_SIZE);
    if (got > 0) {
        if (send_all(fd, buffer, got) < 0)
            drop(epoll_fd, fd);
    } else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(epoll_fd, fd); /* the client left, or reset the connection */
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s LISTENING_FD SECONDS\n", argv[0]);
        return 2;
    }
    int listener = atoi(argv[1]);
    alarm((unsigned)atoi(argv[2]));

    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event) < 0) {
        perror("echo_epoll: epoll");
        return 1;
    }
    static struct epoll_event events[MAX_EVENTS];
    static char buffer[BUFFER_SIZE];
    for (;;) {
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_epoll: epoll_wait");
            return 1;
        }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                if (accept_all(epoll_fd, listener) < 0)
                    return 1;
            } else {
                echo(epoll_fd, fd, buffer);
            }
        }
    }
}
