#!/bin/sh
# One HTTP exchange on stdin/stdout: the stand-in for nginx/httpd.
PATH=@busybox@/bin
cr=$(printf '\r')
read -r _ || exit 0  # the request line; every path gets the same answer
while read -r header; do
  case "$header" in "" | "$cr") break ;; esac
done
name=$(cat /proc/sys/kernel/hostname)
generation=$(cat /run/nixos-lab-guest/generation 2>/dev/null || echo 0)
if [ -e "/run/nixos-lab/faults/health-fail/$name" ]; then
  status="500 Internal Server Error"
  body="$name unhealthy"
else
  status="200 OK"
  body="$name generation $generation"
fi
printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
  "$status" "$((${#body} + 1))" "$body"
