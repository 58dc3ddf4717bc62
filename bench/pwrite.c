/* SQLite's way of appending WAL frames (two pwrites a frame: 24-byte header, 4 KiB page)
 * against the same bytes in one pwrite, 20 frames a commit, in page cache (no fsync): the cost
 * hotline-walbuf removes (BENCHMARKS.md, twelfth session).
 * Build and run: gcc -O2 -o /tmp/pwrite bench/pwrite.c && /tmp/pwrite [dir] */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { FRAMES = 20, COMMITS = 20000, FRAME = 24 + 4096 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  static char page[4096], hdr[24], run[FRAMES * FRAME];
  char path[4096];
  snprintf(path, sizeof path, "%s/pwrite.tmp", argc > 1 ? argv[1] : "/var/tmp");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { perror(path); return 1; }
  memset(page, 1, sizeof page);
  memset(run, 2, sizeof run);
  for (int round = 0; round < 3; round++) {
    double t = now();
    for (int i = 0; i < COMMITS; i++) {
      off_t off = (off_t)(i % 100) * sizeof run;
      for (int f = 0; f < FRAMES; f++, off += FRAME) {
        if (pwrite(fd, hdr, sizeof hdr, off) < 0 || pwrite(fd, page, sizeof page, off + 24) < 0) { perror("pwrite"); return 1; }
      }
    }
    double two = now() - t;
    t = now();
    for (int i = 0; i < COMMITS; i++) {
      if (pwrite(fd, run, sizeof run, (off_t)(i % 100) * sizeof run) < 0) { perror("pwrite"); return 1; }
    }
    double one = now() - t;
    printf("a commit of %d frames: two writes a frame %.1f us, one write %.1f us\n", FRAMES,
           two / COMMITS * 1e6, one / COMMITS * 1e6);
  }
  unlink(path);
  return 0;
}
