#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* A minimal echo runtime in C: the floor of what any runtime can cost behind the benchmark harness.
   Connects to AWS_LAMBDA_RUNTIME_API, then loops: next, echo the event back as the response. */
static int readResponse(int fd, char *buffer, int size, char **body, int *bodyLength) {
    int total = 0;
    for (;;) {
        int n = read(fd, buffer + total, size - total - 1);
        if (n <= 0) return -1;
        total += n;
        buffer[total] = 0;
        char *end = strstr(buffer, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(buffer, "Content-Length:");
        int length = cl ? atoi(cl + 15) : 0;
        int have = total - (int)(end + 4 - buffer);
        if (have < length) continue;
        *body = end + 4;
        *bodyLength = length;
        return total;
    }
}
int main(void) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    char host[64];
    snprintf(host, sizeof host, "%s", api);
    char *colon = strchr(host, ':');
    *colon = 0;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    inet_pton(AF_INET, host, &address.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) return 1;
    static char buffer[1 << 20], request[1 << 16];
    for (;;) {
        int n = snprintf(request, sizeof request, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n", api);
        if (write(fd, request, n) != n) return 1;
        char *body; int length;
        if (readResponse(fd, buffer, sizeof buffer, &body, &length) < 0) return 0;
        char *idHeader = strcasestr(buffer, "Lambda-Runtime-Aws-Request-Id:");
        char id[64] = {0};
        sscanf(idHeader + 30, " %63[^\r\n]", id);
        char payload[65536];
        memcpy(payload, body, length);
        n = snprintf(request, sizeof request, "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", id, api, length);
        memcpy(request + n, payload, length);
        if (write(fd, request, n + length) != n + length) return 1;
        if (readResponse(fd, buffer, sizeof buffer, &body, &length) < 0) return 0;
    }
}
