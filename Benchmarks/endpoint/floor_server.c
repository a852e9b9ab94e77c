/*
 * The floor for scripts/bench-endpoint: an HTTP/1.1 server that does no work at all. It answers
 * SQS and DynamoDB JSON calls with fixed, valid bodies (the MD5s match the benchmark's message), so
 * what boto3 measures against it is boto3's own cost per round trip: signing, HTTP framing,
 * serializing and parsing. No endpoint measured through boto3 can be faster than this.
 *
 * Build: cc -O2 -o floor_server floor_server.c     Run: ./floor_server PORT   (prints "floor ready")
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The MD5 of the benchmark's message body {"jobId":"1","input":"s3://bucket/key"}. */
#define BODY_MD5 "ca710c692fb08aa91da7e2234317bb05"

static const char *answer(const char *target) {
    if (strstr(target, "AmazonSQS.SendMessage")) return "{\"MessageId\":\"5fea7756-0ea4-451a-a703-a558b933e274\",\"MD5OfMessageBody\":\"" BODY_MD5 "\"}";
    if (strstr(target, "AmazonSQS.ReceiveMessage"))
        return "{\"Messages\":[{\"MessageId\":\"5fea7756-0ea4-451a-a703-a558b933e274\",\"ReceiptHandle\":\"r1\",\"MD5OfBody\":\"" BODY_MD5
               "\",\"Body\":\"{\\\"jobId\\\":\\\"1\\\",\\\"input\\\":\\\"s3://bucket/key\\\"}\"}]}";
    if (strstr(target, "AmazonSQS.CreateQueue")) return "{\"QueueUrl\":\"http://127.0.0.1/000000000000/q\"}";
    if (strstr(target, "DynamoDB_20120810.GetItem")) return "{\"Item\":{\"pk\":{\"S\":\"job#1\"},\"status\":{\"S\":\"QUEUED\"},\"progress\":{\"N\":\"0\"}}}";
    if (strstr(target, "DynamoDB_20120810.CreateTable"))
        return "{\"TableDescription\":{\"TableName\":\"t\",\"TableStatus\":\"ACTIVE\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}]}}";
    return "{}";
}

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    char buffer[1 << 16];
    size_t filled = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(buffer, filled, "\r\n\r\n", 4))) {
            if (filled == sizeof buffer) goto done;
            ssize_t got = read(fd, buffer + filled, sizeof buffer - filled);
            if (got <= 0) goto done;
            filled += (size_t)got;
        }
        size_t header_length = (size_t)(end - buffer) + 4;
        buffer[header_length - 1] = 0;
        long body_length = 0;
        char target[128] = "";
        for (char *line = strstr(buffer, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
            if (!strncasecmp(line + 2, "content-length:", 15)) body_length = strtol(line + 17, NULL, 10);
            if (!strncasecmp(line + 2, "x-amz-target:", 13)) sscanf(line + 15, " %127[^\r]", target);
        }
        size_t total = header_length + (size_t)body_length;
        while (filled < total) {
            if (total > sizeof buffer) goto done;
            ssize_t got = read(fd, buffer + filled, total - filled);
            if (got <= 0) goto done;
            filled += (size_t)got;
        }
        const char *body = answer(target);
        char response[2048];
        int length = snprintf(response, sizeof response,
                              "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: floor\r\n"
                              "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
        if (write(fd, response, (size_t)length) != length) goto done;
        memmove(buffer, buffer + total, filled - total);
        filled -= total;
    }
done:
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 4599;
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 64)) { perror("floor_server"); return 1; }
    printf("floor ready\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t thread;
        pthread_create(&thread, NULL, serve, (void *)(long)fd);
        pthread_detach(thread);
    }
}
