/* SPDX-License-Identifier: MIT */
/*
 * handles.c: the handle API in one small program.
 *
 * A list of people, each a record in a mova arena that names the next
 * record and its name string by handle, never by pointer: the arena may
 * move any object that nobody has pinned, and a handle keeps reaching it.
 *
 *   writers pin:   p = mova_pin(a, h); ...write...; mova_unpin(a, h);
 *   readers deref: mova_read_lock(); p = mova_deref(a, h); ...read...;
 *                  mova_read_unlock();
 *
 * Build: cc handles.c $(pkg-config --cflags --libs mova). Exits 0 when
 * every check passes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mova.h>

struct person {
	mova_handle name; /* a NUL-terminated string, itself a movable object */
	mova_handle next; /* the next person, or MOVA_NULL */
	unsigned age;
};

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "handles: check failed at line %d: %s\n", __LINE__, \
				#cond);                                                     \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

/* A string as a movable object: allocate, pin to write, unpin. */
static mova_handle new_string(mova_arena *a, const char *s)
{
	size_t len = strlen(s) + 1;
	mova_handle h = mova_halloc(a, len);
	CHECK(h != MOVA_NULL);
	char *p = mova_pin(a, h);
	CHECK(p != NULL);
	memcpy(p, s, len);
	CHECK(mova_unpin(a, h) == 0);
	return h;
}

/* Put a new person at the head of the list. */
static mova_handle push_person(mova_arena *a, mova_handle head, const char *name, unsigned age)
{
	mova_handle h = mova_halloc(a, sizeof(struct person));
	CHECK(h != MOVA_NULL);
	struct person *p = mova_pin(a, h);
	CHECK(p != NULL);
	p->name = new_string(a, name);
	p->next = head;
	p->age = age;
	CHECK(mova_unpin(a, h) == 0);
	return h;
}

/* Walk the list as a reader; returns the sum of the ages. */
static unsigned print_people(mova_arena *a, mova_handle head, int verbose)
{
	unsigned sum = 0;
	mova_read_lock();
	for (mova_handle h = head; h != MOVA_NULL;) {
		const struct person *p = mova_deref(a, h);
		CHECK(p != NULL);
		const char *name = mova_deref(a, p->name);
		CHECK(name != NULL);
		if (verbose)
			printf("  %-8s %3u  (at %p)\n", name, p->age, (const void *)p);
		sum += p->age;
		h = p->next;
	}
	mova_read_unlock();
	return sum;
}

static void print_stats(mova_arena *a, const char *when)
{
	mova_stats st;
	mova_stats_get(a, &st);
	printf("%s: %zu live handles, live %zu bytes, resident %zu KiB, %llu objects migrated\n",
	       when, st.live_handles, st.live_bytes, st.resident_bytes >> 10,
	       (unsigned long long)st.pgmigrate_success);
}

int main(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.reserve_bytes = (size_t)256 << 20; /* address space only; backed as used */
	cfg.kcompactd = 0;                     /* this program compacts by itself */
	mova_arena *a = mova_arena_create(&cfg);
	CHECK(a != NULL);

	/* The people, with clutter allocated between them and then freed: the
	 * holes it leaves are what compaction closes. */
	static const char *const names[] = {"Ada",    "Alan", "Grace",  "Edsger",  "Barbara",
					    "Donald", "Ken",  "Dennis", "Frances", "John"};
	enum { N = sizeof names / sizeof names[0], CLUTTER = 4000 };
	static mova_handle clutter[N][CLUTTER];
	mova_handle head = MOVA_NULL;
	unsigned ages = 0;
	for (unsigned i = 0; i < N; i++) {
		for (unsigned k = 0; k < CLUTTER; k++) {
			clutter[i][k] = mova_halloc(a, 24 + k % 8 * 8);
			CHECK(clutter[i][k] != MOVA_NULL);
		}
		head = push_person(a, head, names[i], 30 + 7 * i);
		ages += 30 + 7 * i;
	}
	for (unsigned i = 0; i < N; i++)
		for (unsigned k = 0; k < CLUTTER; k++)
			CHECK(mova_hfree(a, clutter[i][k]) == 0);

	printf("people, newest first:\n");
	CHECK(print_people(a, head, 1) == ages);
	print_stats(a, "before compaction");

	/* Compaction packs the sparse slabs: unpinned objects may move. */
	CHECK(mova_compact(a, -1) == 0);

	/* The handles still reach every object, wherever it is now. */
	printf("after mova_compact(a, -1):\n");
	CHECK(print_people(a, head, 1) == ages);
	print_stats(a, "after compaction");

	/* A pinned object never moves, and writers write through the pin: a
	 * birthday for the head of the list, across another compaction. */
	struct person *pinned = mova_pin(a, head);
	CHECK(pinned != NULL);
	CHECK(mova_compact(a, -1) == 0);
	pinned->age++;
	ages++;
	CHECK(mova_pin(a, head) == pinned); /* pins nest: the same address */
	CHECK(mova_unpin(a, head) == 0);
	CHECK(mova_unpin(a, head) == 0);
	CHECK(print_people(a, head, 0) == ages);

	/* A pinned object cannot be freed; a freed handle is refused. */
	CHECK(mova_pin(a, head) != NULL);
	CHECK(mova_hfree(a, head) == EBUSY);
	CHECK(mova_unpin(a, head) == 0);

	/* Free everything: each person's name, then the person. */
	while (head != MOVA_NULL) {
		struct person *p = mova_pin(a, head);
		CHECK(p != NULL);
		mova_handle next = p->next, name = p->name;
		CHECK(mova_unpin(a, head) == 0);
		CHECK(mova_hfree(a, name) == 0);
		CHECK(mova_hfree(a, head) == 0);
		CHECK(mova_pin(a, head) == NULL && errno == EINVAL); /* stale now */
		CHECK(mova_hfree(a, head) == EINVAL);
		head = next;
	}
	print_stats(a, "after freeing everything");
	mova_stats st;
	mova_stats_get(a, &st);
	CHECK(st.live_handles == 0 && st.live_bytes == 0);

	mova_arena_destroy(a);
	printf("ok\n");
	return 0;
}
