/* Minimal sd_notify client for the lab's guests: sends its arguments, one per line,
 * as a single datagram to $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
 * `sd-notify MSG... -- PROG ARGS...` then replaces itself with PROG: systemd-nspawn only
 * accepts notifications from the container's PID 1, so PID 1 sends and then goes on.
 * Exit 0 on success, 1 if the variable is unset or the send fails. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *target = getenv("NOTIFY_SOCKET");
    if (target == NULL || target[0] == '\0') {
        fprintf(stderr, "sd-notify: NOTIFY_SOCKET is not set\n");
        return 1;
    }
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    size_t length = strlen(target);
    if (length >= sizeof(address.sun_path)) {
        fprintf(stderr, "sd-notify: socket path too long\n");
        return 1;
    }
    memcpy(address.sun_path, target, length);
    if (address.sun_path[0] == '@')
        address.sun_path[0] = '\0';
    int end = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            end = i;
            break;
        }
    }
    char message[4096];
    size_t used = 0;
    for (int i = 1; i < end; i++) {
        size_t part = strlen(argv[i]);
        if (used + part + 1 >= sizeof(message)) {
            fprintf(stderr, "sd-notify: message too long\n");
            return 1;
        }
        memcpy(message + used, argv[i], part);
        used += part;
        message[used++] = '\n';
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("sd-notify: socket");
        return 1;
    }
    socklen_t address_length = offsetof(struct sockaddr_un, sun_path) + length;
    if (sendto(fd, message, used, 0, (struct sockaddr *)&address, address_length) < 0) {
        perror("sd-notify: sendto");
        return 1;
    }
    close(fd);
    if (end + 1 < argc) {
        execv(argv[end + 1], argv + end + 1);
        perror("sd-notify: execv");
        return 1;
    }
    return 0;
}
