/* The CMOS RTC at 0x70/0x71: what Linux's rtc_cmos probe and read path rely on. */
#include <string.h>
#include <time.h>

#include "tests/harness.h"
#include "vmm/vmm_int.h"

static uint8_t rd(struct vmm_rtc *r, uint8_t reg)
{
	uint8_t v = 0;

	vmm_rtc_out(r, 0, reg);
	vmm_rtc_in(r, 1, &v);
	return v;
}

static int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

TEST(rtc_update_never_in_progress_and_time_valid)
{
	struct vmm_rtc r;

	memset(&r, 0, sizeof(r));
	CHECK_EQ(rd(&r, 0x0a) & 0x80, 0);      /* UIP clear: the probe does not wait */
	CHECK_EQ(rd(&r, 0x0d) & 0x80, 0x80);   /* VRT: time and RAM valid */
	CHECK_EQ(rd(&r, 0x0c), 0);             /* no interrupt flags */
	vmm_rtc_out(&r, 0, 0x0a);
	vmm_rtc_out(&r, 1, 0xa6);              /* a guest cannot set UIP */
	CHECK_EQ(rd(&r, 0x0a), 0x26);
}

TEST(rtc_reads_host_utc_in_bcd_24h_by_default)
{
	struct vmm_rtc r;
	struct tm tm;
	time_t t0, t1;
	int sec, min, hour, year;

	memset(&r, 0, sizeof(r));
	CHECK_EQ(rd(&r, 0x0b) & 0x06, 0x02);   /* BCD, 24-hour */
	t0 = time(NULL);
	sec = bcd(rd(&r, 0x00));
	min = bcd(rd(&r, 0x02));
	hour = bcd(rd(&r, 0x04));
	year = bcd(rd(&r, 0x32)) * 100 + bcd(rd(&r, 0x09));
	t1 = time(NULL);
	gmtime_r(&t0, &tm);
	if (t1 == t0) {
		CHECK_EQ(sec, tm.tm_sec);
		CHECK_EQ(min, tm.tm_min);
		CHECK_EQ(hour, tm.tm_hour);
	}
	CHECK_EQ(year, tm.tm_year + 1900);
	vmm_rtc_out(&r, 0, 0x0b);
	vmm_rtc_out(&r, 1, 0x06);              /* binary mode */
	CHECK(rd(&r, 0x02) < 60);
	CHECK_EQ(rd(&r, 0x09), (uint8_t)(tm.tm_year % 100));
}

TEST(rtc_cmos_ram_keeps_bytes_and_index_is_write_only)
{
	struct vmm_rtc r;
	uint8_t v = 0;

	memset(&r, 0, sizeof(r));
	vmm_rtc_out(&r, 0, 0x80 | 0x40);       /* NMI-mask bit ignored */
	vmm_rtc_out(&r, 1, 0x5a);
	CHECK_EQ(rd(&r, 0x40), 0x5a);
	vmm_rtc_in(&r, 0, &v);
	CHECK_EQ(v, 0xff);
	vmm_rtc_out(&r, 0, 0x00);
	vmm_rtc_out(&r, 1, 0x99);              /* the clock is the host's: writes do not move it */
	CHECK(bcd(rd(&r, 0x00)) < 60);
}
