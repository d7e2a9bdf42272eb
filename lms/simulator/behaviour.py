"""Day-to-day behaviour of one shard of students, turned into contract events.

A student is active on a day with probability equal to their (decaying) engagement, less at
weekends; an active day holds one or two sessions (login ... logout) in one running course, each
a few activities that walk the course in chapter order: read (page view + scrolls), watch videos
(play/pause/seek/complete), take the quiz (answers follow a 2PL IRT model on per-topic ability),
submit the assignment, then move on (sometimes skipping a chapter, sometimes revisiting one).
Scheduled live classes are attended in their own session. Dropped students stop at their dropout
day.

The loop is plain Python over sessions with ``random.Random`` (fast scalar draws); each event is
appended as (occurred ms, delivery delay, type, session part, body), where the body is the
pre-serialised tail of the line (type, course, payload). Everything constant for a course, chapter
or video is serialised once per shard; numbers go through lookup tables of their decimal text.
``lms.simulator.delivery`` then adds ids, timestamps, delivery noise and the arrival order in bulk.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TypeVar

import numpy as np

from lms.simulator.catalog import DAY_MS, HOUR_MS, Catalog, Chapter, Course, LiveClass, Quiz, Video
from lms.simulator.cheating import CheatProfile
from lms.simulator.config import SimulationConfig
from lms.simulator.names import FEEDBACK_BAD, FEEDBACK_CONTACT, FEEDBACK_GOOD, FEEDBACK_NEUTRAL
from lms.simulator.population import DEVICES, NO_DROPOUT

# (topic index, IRT a, IRT b, reading_time_s, max_points, id fragment, right-answer fragment,
# the three wrong-answer fragments)
PreparedQuestion = tuple[int, float, float, float, float, str, str, tuple[str, ...]]
NO_COURSE = '"course_id":null,'
# (app_version, os) pairs per device: the app build matches its platform.
CLIENT_VERSIONS = {
    "desktop": (
        ("web-5.12.0", "Windows 11"),
        ("web-5.12.0", "macOS 14"),
        ("web-5.11.3", "Ubuntu 24.04"),
        ("web-5.12.0", "ChromeOS 120"),
    ),
    "mobile": (
        ("android-3.8.2", "Android 14"),
        ("android-3.7.9", "Android 13"),
        ("ios-3.8.1", "iOS 17.4"),
        ("ios-3.8.1", "iOS 18.1"),
    ),
    "tablet": (("ios-3.8.1", "iPadOS 17.4"), ("android-3.8.2", "Android 13")),
    "other": (("web-5.11.3", "Linux"),),
}
# Mobile and tablet clients buffer offline, so they are the ones delivering late.
BUFFERING_DEVICES = frozenset({"mobile", "tablet"})
BUFFERING_EVENT_SHARE = 0.45
WEEKEND_FACTOR = 0.6

T = TypeVar("T")

# Decimal text of non-negative numbers, indexed by the value in tenths / hundredths: a list lookup
# is several times cheaper than float formatting. Every value written through them is bounded
# (depth <= 100, visible <= 630 s, video positions and watch time <= 8 * 1500 s, hidden <= 45 s);
# answer times fall back to formatting above 1000 s.
TENTHS = [f"{i // 10}.{i % 10}" for i in range(150_001)]
N_HUNDREDTHS = 100_000
HUNDREDTHS = [f"{i // 100}.{i % 100:02d}" for i in range(N_HUNDREDTHS)]
SCROLL_BLOCK = 1 << 16
SCROLL_FORMAT = '{}{},"visible_s":{}}}}}'
LOGIN_BODY = {
    m: f'"event_type":"login","course_id":null,"payload":{{"method":"{m}"}}}}'
    for m in ("password", "sso", "token")
}
LOGOUT_USER = '"event_type":"logout","course_id":null,"payload":{"reason":"user"}}'
LOGOUT_TIMEOUT = '"event_type":"logout","course_id":null,"payload":{"reason":"timeout"}}'


def pick(seq: Sequence[T], idx: list[int]) -> list[T]:
    """``[seq[i] for i in idx]`` at C speed."""
    if len(idx) > 1:
        return list(itemgetter(*idx)(seq))
    return [seq[i] for i in idx]


def page_body(cpart: str, page_type: str, chapter: str | None, path: str) -> str:
    ch = "null" if chapter is None else f'"{chapter}"'
    return (
        f'"event_type":"page_view",{cpart}"payload":{{"page_type":"{page_type}",'
        f'"chapter_id":{ch},"path":"{path}"}}}}'
    )


@dataclass
class VideoText:
    """Serialised pieces of a video's events (each ends where its first number starts)."""

    page: str
    play: str
    pause: str
    seek: str
    complete: str


@dataclass
class CourseText:
    cpart: str
    home: str
    forum: str
    chapter_page: dict[str, str]
    scroll: dict[str, str]
    quiz_page: dict[str, str]
    assignment_page: dict[str, str]
    videos: dict[str, VideoText]


def course_text(course: Course) -> CourseText:
    cid = course.course_id
    cpart = f'"course_id":"{cid}",'
    text = CourseText(
        cpart=cpart,
        home=page_body(cpart, "course_home", None, f"/courses/{cid}"),
        forum=page_body(cpart, "forum", None, f"/courses/{cid}/forum"),
        chapter_page={},
        scroll={},
        quiz_page={},
        assignment_page={},
        videos={},
    )
    for ch in course.chapters:
        chid = ch.chapter_id
        text.chapter_page[chid] = page_body(
            cpart, "chapter", chid, f"/courses/{cid}/chapters/{ch.position}"
        )
        text.scroll[chid] = (
            f'"event_type":"scroll_event",{cpart}"payload":{{"chapter_id":"{chid}","depth_pct":'
        )
        qid = ch.quiz.quiz_id
        text.quiz_page[chid] = page_body(cpart, "quiz", chid, f"/courses/{cid}/quizzes/{qid}")
        if ch.assignment is not None:
            aid = ch.assignment.assignment_id
            text.assignment_page[chid] = page_body(
                cpart, "assignment", chid, f"/courses/{cid}/assignments/{aid}"
            )
        for v in ch.videos:
            vid = v.video_id
            ids = f'"payload":{{"video_id":"{vid}","chapter_id":"{chid}",'
            text.videos[vid] = VideoText(
                page=page_body(cpart, "video", chid, f"/courses/{cid}/videos/{vid}"),
                play=f'"event_type":"video_play",{cpart}{ids}"position_s":',
                pause=f'"event_type":"video_pause",{cpart}{ids}"position_s":',
                seek=f'"event_type":"video_seek",{cpart}{ids}"from_s":',
                complete=(
                    f'"event_type":"video_complete",{cpart}{ids}'
                    f'"duration_s":{float(v.duration_s):.1f},"watched_s":'
                ),
            )
    return text


@dataclass
class ShardStudents:
    """The slice of the population a shard simulates (pickled to the worker)."""

    first_index: int
    student_ids: list[str]
    emails: list[str]
    engagement_base: np.ndarray
    decay_rate: np.ndarray
    ability: np.ndarray
    pref_hour: np.ndarray
    device: np.ndarray
    cheat: np.ndarray
    dropout_day: np.ndarray
    # per student: [(course index, enrolled_at ms, interest)]
    enrollments: list[list[tuple[int, int, float]]]


@dataclass
class EnrollmentState:
    course: Course
    enrolled_ms: int
    interest: float
    first_day: int
    ptr: int = 0  # index of the chapter being worked on
    stage: int = 0  # 0 read, 1 videos, 2 quiz, 3 assignment
    video_i: int = 0
    video_pos: dict[str, float] = field(default_factory=dict)


@dataclass
class EventBlock:
    """Events of one type generated in bulk (numpy), as columns."""

    etype: str
    ts: np.ndarray  # occurred ms
    delay: np.ndarray  # delivery delay ms
    sessions: list[str]
    bodies: list[str]


@dataclass
class RawEvents:
    # One tuple per event: (occurred ms, delivery delay ms, event_type, session part, body). The
    # line is head + session part + body (see ``delivery``).
    records: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    blocks: list[EventBlock] = field(default_factory=list)
    # (live_class_id, student_id, joined_ms, left_ms, leave_event_sent)
    attendance: list[tuple[str, str, int, int, bool]] = field(default_factory=list)


class ShardBehaviour:
    def __init__(
        self,
        cfg: SimulationConfig,
        catalog: Catalog,
        students: ShardStudents,
        rnd: random.Random,
        day_uniforms: np.ndarray,
        day0_ms: int,
        first_weekday: int,
    ) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.st = students
        self.rnd = rnd
        self.u = day_uniforms
        self.day0_ms = day0_ms
        self.first_weekday = first_weekday
        self.out = RawEvents()
        self.p_late_session = min(1.0, cfg.late_rate / BUFFERING_EVENT_SHARE)
        self.sp = ""
        self.delay = 0
        self.append = self.out.records.append
        self.quiz_cache: dict[str, tuple[list[PreparedQuestion], float]] = {}
        self.random = rnd.random
        self.releases = {c.course_id: [ch.release_ms for ch in c.chapters] for c in catalog.courses}
        self.text = {c.course_id: course_text(c) for c in catalog.courses}
        # Engagement per student and day, and the days each student is active (less at
        # weekends), for the whole shard at once.
        days = np.arange(cfg.days)
        self.eng = students.engagement_base[:, None] * np.exp(
            -students.decay_rate[:, None] * days[None, :]
        )
        weekend = (first_weekday + days) % 7 >= 5
        self.active = day_uniforms < self.eng * np.where(weekend, WEEKEND_FACTOR, 1.0)[None, :]
        # Standard normal draws in bulk (numpy), seeded from the shard's stream.
        self.normal = _normal_stream(np.random.default_rng(rnd.getrandbits(64))).__next__
        # Scrolls are generated in bulk at the end: a read only draws how many scrolls it makes
        # and takes their uniforms from blocks drawn in numpy, whose prefix sums give the time
        # it lasts; the scroll events themselves are expanded from ``scroll_reads``.
        self.scroll_rng = np.random.default_rng(rnd.getrandbits(64))
        self.scroll_blocks: list[np.ndarray] = []
        self.scroll_csum: list[float] = []
        self.scroll_pos = SCROLL_BLOCK
        # (now, n scrolls, target depth, global index in the blocks, delay, session part, head)
        self.scroll_reads: list[tuple[int, int, float, int, int, str, str]] = []

    # -- emission ----------------------------------------------------------------------------

    def ri(self, lo: int, hi: int) -> int:
        # random.randint is ~10x slower and exact uniformity does not matter for jitter.
        return lo + int(self.random() * (hi - lo))

    def emit(self, ts: int, etype: str, body: str) -> None:
        self.append((ts, self.delay, etype, self.sp, body))

    def open_session(self, sid: str, device: str, network: str, allow_late: bool = True) -> None:
        rnd = self.rnd
        builds = CLIENT_VERSIONS[device]
        version, os_name = builds[self.student_os % len(builds)]
        ses = f"ses_{rnd.getrandbits(64):016x}"
        self.sp = (
            f'"student_id":"{sid}","session_id":"{ses}","client":{{"device":"{device}",'
            f'"app_version":"{version}","os":"{os_name}","network_id":"{network}"}},'
        )
        self.delay = 0
        if allow_late and device in BUFFERING_DEVICES and rnd.random() < self.p_late_session:
            # Offline buffering: the whole session reaches the collector hours later.
            self.delay = int(rnd.uniform(1.0, 30.0) * HOUR_MS)

    # -- the school year of one shard ----------------------------------------------------------

    def run(self) -> RawEvents:
        for i in range(len(self.st.student_ids)):
            self.simulate_student(i)
        if self.scroll_reads:
            self.out.blocks.append(self.expand_scrolls())
        return self.out

    def new_scroll_block(self) -> None:
        csum = np.zeros(SCROLL_BLOCK + 1)
        np.cumsum(self.scroll_rng.random(SCROLL_BLOCK), out=csum[1:])
        self.scroll_blocks.append(csum)
        self.scroll_csum = csum.tolist()
        self.scroll_pos = 0

    def expand_scrolls(self) -> EventBlock:
        now_c, n_c, target_c, at_c, delay_c, sp_c, head_c = zip(*self.scroll_reads, strict=True)
        n = np.asarray(n_c, dtype=np.int64)
        total = int(n.sum())
        read = np.repeat(np.arange(len(n)), n)
        k = np.arange(total) - np.repeat(np.cumsum(n) - n, n) + 1
        csum = np.concatenate(self.scroll_blocks)
        at = np.asarray(at_c, dtype=np.int64)[read]
        visible = 8.0 * k + 82.0 * (csum[at + k] - csum[at])
        ts = np.asarray(now_c, dtype=np.int64)[read] + (visible * 1000).astype(np.int64)
        depth = np.asarray(target_c)[read] * 10.0 / n[read] * k + 0.5
        depth_text = pick(TENTHS, depth.astype(np.int64).tolist())
        visible_text = pick(TENTHS, (visible * 10 + 0.5).astype(np.int64).tolist())
        reads = read.tolist()
        bodies = list(map(SCROLL_FORMAT.format, pick(head_c, reads), depth_text, visible_text))
        return EventBlock(
            "scroll_event",
            ts,
            np.asarray(delay_c, dtype=np.int64)[read],
            pick(sp_c, reads),
            bodies,
        )

    def simulate_student(self, i: int) -> None:
        cfg, rnd, st = self.cfg, self.rnd, self.st
        random_ = self.random
        sid = st.student_ids[i]
        self.student_os = rnd.randrange(12)
        self.ability = st.ability[i].tolist()
        self.email = st.emails[i]
        self.cheat = CheatProfile.from_flags(st.cheat[i])
        primary = DEVICES[int(st.device[i])]
        secondary = "mobile" if primary == "desktop" else "desktop"
        home_net = f"net_{rnd.getrandbits(48):012x}"
        mobile_net = f"net_{rnd.getrandbits(48):012x}"
        self.alt_net = f"net_{rnd.getrandbits(48):012x}"
        drop = int(st.dropout_day[i])
        stop = cfg.days if drop == NO_DROPOUT else drop
        pref = float(st.pref_hour[i])
        states: list[EnrollmentState] = []
        live_by_day: dict[int, list[tuple[EnrollmentState, LiveClass]]] = {}
        for c, enr_ms, interest in st.enrollments[i]:
            course = self.catalog.courses[c]
            enr_day = max(0, (enr_ms - self.day0_ms) // DAY_MS)
            state = EnrollmentState(course, enr_ms, interest, max(course.start_day, enr_day))
            states.append(state)
            for lc in course.live_classes:
                if state.first_day <= lc.day < stop:
                    live_by_day.setdefault(lc.day, []).append((state, lc))
        # Engagement per day, and the days the student is active (less at weekends), for all
        # days at once; the loop only visits active days and days with a live class.
        active = np.flatnonzero(self.active[i, :stop]).tolist()
        eng_of = self.eng[i].tolist()
        if live_by_day:
            active_days = set(active)
            visit = sorted(active_days.union(live_by_day))
        else:
            active_days = None
            visit = active
        for t in visit:
            eng = eng_of[t]
            lcs = live_by_day.get(t)
            if lcs:
                for state, lc in lcs:
                    if random_() < 0.15 + 0.75 * eng:
                        device = primary if random_() < 0.8 else secondary
                        net = mobile_net if device == "mobile" else home_net
                        self.live_session(sid, state, lc, device, net, eng)
                if active_days is not None and t not in active_days:
                    continue
            running = [s for s in states if s.first_day <= t <= s.course.end_day]
            if not running:
                continue
            day_ms = self.day0_ms + t * DAY_MS
            n_sessions = 2 if random_() < 0.35 * eng else 1
            hour = min(23.0, max(6.0, pref + 2.0 * self.normal()))
            for k in range(n_sessions):
                start = day_ms + int((hour + 3.0 * k) * HOUR_MS)
                if start >= day_ms + DAY_MS - HOUR_MS:
                    break
                if len(running) == 1:
                    state = running[0]
                else:
                    state = rnd.choices(running, weights=[s.interest for s in running])[0]
                device = primary if random_() < 0.8 else secondary
                net = mobile_net if device == "mobile" else home_net
                self.course_session(sid, state, start, device, net, eng)

    # -- sessions ----------------------------------------------------------------------------

    def login(self, now: int, device: str) -> None:
        r = self.random()
        method = "token" if device == "mobile" and r < 0.5 else "sso" if r < 0.75 else "password"
        self.append((now, self.delay, "login", self.sp, LOGIN_BODY[method]))

    def logout(self, now: int) -> None:
        r = self.random()
        if r < 0.05:
            return  # the tab was closed: no logout at all
        if r < 0.17:
            self.append((now + 30 * 60_000, self.delay, "logout", self.sp, LOGOUT_TIMEOUT))
        else:
            self.append((now, self.delay, "logout", self.sp, LOGOUT_USER))

    def course_session(
        self, sid: str, state: EnrollmentState, start: int, device: str, net: str, eng: float
    ) -> None:
        random_ = self.random
        course = state.course
        cid = course.course_id
        text = self.text[cid]
        self.open_session(sid, device, net)
        append, sp, delay = self.append, self.sp, self.delay
        now = start
        self.login(now, device)
        now += 2_000 + int(random_() * 18_000)
        append((now, delay, "page_view", sp, text.home))
        chapters = course.chapters
        releases = self.releases[cid]
        n_act = 1 + min(6, int(-math.log(1.0 - random_()) * (1.0 + 3.0 * eng)))
        for _ in range(n_act):
            now += 3_000 + int(random_() * 57_000)
            avail = bisect_right(releases, now)
            r = random_()
            if avail == 0 or r < 0.05:
                append((now, delay, "page_view", sp, text.forum))
                now += 20_000 + int(random_() * 280_000)
                continue
            if r < 0.08:
                now = self.feedback(
                    now, text.cpart, course, chapters[min(state.ptr, avail - 1)], eng
                )
                continue
            behind = state.ptr < min(avail, len(chapters))
            if r < 0.20 or not behind:
                # Revisit an earlier chapter (revision, or nothing new is open yet).
                ch = chapters[int(random_() * min(max(state.ptr, 1), avail))]
                if random_() < 0.6 or not ch.videos:
                    now = self.read_chapter(now, text, ch, eng)
                else:
                    now = self.watch_video(now, text, ch, ch.videos[0], state, eng)
                continue
            ch = chapters[state.ptr]
            if state.stage == 0:
                now = self.read_chapter(now, text, ch, eng)
                state.stage = 2 if (random_() < 0.15 or not ch.videos) else 1
            elif state.stage == 1:
                video = ch.videos[state.video_i]
                now = self.watch_video(now, text, ch, video, state, eng)
                state.video_i += 1
                if state.video_i >= len(ch.videos):
                    state.stage = 2
            elif state.stage == 2:
                if random_() < 0.08:
                    passed = True  # skips the quiz
                else:
                    now, passed = self.take_quiz(now, text, ch, sid)
                if passed or random_() < 0.5:
                    state.stage = 3
            else:
                if ch.assignment is not None and random_() < 0.4 + 0.55 * eng:
                    now = self.submit_assignment(now, text, ch, eng)
                state.ptr += 2 if random_() < 0.06 else 1
                state.stage = 0
                state.video_i = 0
        self.logout(now + 5_000 + int(random_() * 115_000))

    def read_chapter(self, now: int, text: CourseText, ch: Chapter, eng: float) -> int:
        random_, append, sp, delay = self.random, self.append, self.sp, self.delay
        chid = ch.chapter_id
        append((now, delay, "page_view", sp, text.chapter_page[chid]))
        target = 100.0 if random_() < 0.3 + 0.6 * eng else 15.0 + 75.0 * random_()
        n = 2 + int(random_() * 5)
        at = self.scroll_pos
        if at + n > SCROLL_BLOCK:
            self.new_scroll_block()
            at = 0
        csum = self.scroll_csum
        # Each scroll comes 8..90 s after the previous one (see ``expand_scrolls``).
        visible = 8.0 * n + 82.0 * (csum[at + n] - csum[at])
        self.scroll_pos = at + n
        self.scroll_reads.append(
            (
                now,
                n,
                target,
                (len(self.scroll_blocks) - 1) * (SCROLL_BLOCK + 1) + at,
                delay,
                sp,
                text.scroll[chid],
            )
        )
        return now + int(visible * 1000) + 1_000 + int(random_() * 29_000)

    def watch_video(
        self,
        now: int,
        text: CourseText,
        ch: Chapter,
        video: Video,
        state: EnrollmentState,
        eng: float,
    ) -> int:
        random_, append, sp, delay = self.random, self.append, self.sp, self.delay
        vid = video.video_id
        vt = text.videos[vid]
        duration = float(video.duration_s)
        tenths = TENTHS
        append((now, delay, "page_view", sp, vt.page))
        now += 1_000 + int(random_() * 7_000)
        pos = state.video_pos.get(vid, 0.0)
        if pos >= duration - 1:
            pos = 0.0
        watched = 0.0
        play, pause = vt.play, vt.pause
        append((now, delay, "video_play", sp, f"{play}{tenths[int(pos * 10 + 0.5)]}}}}}"))
        seg_span = 100.0 + 500.0 * eng
        give_up = 0.25 + 0.3 * (1.0 - eng)
        for _ in range(8):
            seg = 20.0 + seg_span * random_()
            if seg > duration - pos:
                seg = duration - pos
            pos += seg
            watched += seg
            now += int(seg * 1000)
            if pos >= duration - 0.05:
                append(
                    (
                        now,
                        delay,
                        "video_complete",
                        sp,
                        f"{vt.complete}{tenths[int(watched * 10 + 0.5)]}}}}}",
                    )
                )
                pos = duration
                break
            r = random_()
            if r < 0.55:
                p_text = tenths[int(pos * 10 + 0.5)]
                append(
                    (
                        now,
                        delay,
                        "video_pause",
                        sp,
                        f'{pause}{p_text},"watched_s":{tenths[int(watched * 10 + 0.5)]}}}}}',
                    )
                )
                if random_() < give_up:
                    break  # gives up for now; resumes here next time
                now += 2_000 + int(random_() * 88_000)
                append((now, delay, "video_play", sp, f"{play}{p_text}}}}}"))
            elif r < 0.85:
                if random_() < 0.4:
                    to = pos - (5.0 + 55.0 * random_())
                else:
                    to = pos + (10.0 + 110.0 * random_())
                to = min(max(0.0, to), duration - 1.0)
                append(
                    (
                        now,
                        delay,
                        "video_seek",
                        sp,
                        f'{vt.seek}{tenths[int(pos * 10 + 0.5)]},"to_s":{tenths[int(to * 10 + 0.5)]}}}}}',
                    )
                )
                pos = to
                now += 300 + int(random_() * 2_700)
            else:
                append(
                    (
                        now,
                        delay,
                        "video_pause",
                        sp,
                        f'{pause}{tenths[int(pos * 10 + 0.5)]},"watched_s":{tenths[int(watched * 10 + 0.5)]}}}}}',
                    )
                )
                break
        state.video_pos[vid] = pos
        return now + 1_000 + int(random_() * 19_000)

    def take_quiz(self, now: int, text: CourseText, ch: Chapter, sid: str) -> tuple[int, bool]:
        rnd, cheat = self.rnd, self.cheat
        quiz = ch.quiz
        qid = quiz.quiz_id
        chid = ch.chapter_id
        cpart = text.cpart
        attempt = f"att_{rnd.getrandbits(64):016x}"
        random_ = self.random
        append = self.append
        sp, delay = self.sp, self.delay
        append((now, delay, "page_view", sp, text.quiz_page[chid]))
        now += 2_000 + int(random_() * 13_000)
        started = now
        ids = f'"quiz_id":"{qid}","attempt_id":"{attempt}"'
        append(
            (
                now,
                delay,
                "quiz_start",
                sp,
                f'"event_type":"quiz_start",{cpart}"payload":{{{ids},"chapter_id":"{chid}"}}}}',
            )
        )
        score = 0.0
        n_correct = 0
        ability = self.ability
        normal = self.normal
        exp, log = math.exp, math.log
        hundredths = HUNDREDTHS
        answer_head = f'"event_type":"question_answer",{cpart}"payload":{{{ids},'
        prepared, max_score = self.prepared_quiz(quiz)
        honest_switch_at = int(random_() * len(prepared)) if random_() < 0.03 else -1
        fast, switching = cheat.fast_answers, cheat.tab_switching
        for k, (topic, a, b, reading, points, fixed, right, wrong) in enumerate(prepared):
            p = 1.0 / (1.0 + exp(-a * (ability[topic] - b)))
            if fast:
                # Answers come from elsewhere: near-perfect, and faster than anyone can read.
                if p < 0.95:
                    p = 0.95
                taken = reading * (0.04 + 0.16 * random_())
            else:
                # lognormal(0.3, 0.35) reading pace plus an exponential (mean 12 s) pause.
                taken = reading * exp(0.3 + 0.35 * normal()) - 12.0 * log(1.0 - random_())
            if (switching and random_() < 0.45) or k == honest_switch_at:
                hidden = 4.0 + 41.0 * random_()
                append(
                    (
                        now + 1_000,
                        delay,
                        "tab_hidden",
                        sp,
                        f'"event_type":"tab_hidden",{cpart}"payload":{{"context":"quiz",{ids}}}}}',
                    )
                )
                append(
                    (
                        now + 1_000 + int(hidden * 1000),
                        delay,
                        "tab_visible",
                        sp,
                        f'"event_type":"tab_visible",{cpart}"payload":{{"context":"quiz",{ids},'
                        f'"hidden_s":{TENTHS[int(hidden * 10 + 0.5)]}}}}}',
                    )
                )
                taken += hidden + 1.0
            if random_() < p:
                outcome = right
                score += points
                n_correct += 1
            else:
                outcome = wrong[int(random_() * 3)]
            now += int(taken * 1000)
            h = int(taken * 100 + 0.5)
            append(
                (
                    now,
                    delay,
                    "question_answer",
                    sp,
                    f'{answer_head}{fixed}{outcome}"time_taken_s":'
                    f"{hundredths[h] if h < N_HUNDREDTHS else f'{taken:.2f}'}}}}}",
                )
            )
        now += 1_000 + int(random_() * 9_000)
        n_q = len(quiz.questions)
        append(
            (
                now,
                delay,
                "quiz_submit",
                sp,
                f'"event_type":"quiz_submit",{cpart}"payload":{{{ids},"chapter_id":"{chid}",'
                f'"score":{score:.1f},"max_score":{max_score:.1f},"n_questions":{n_q},'
                f'"n_correct":{n_correct},"duration_s":{(now - started) / 1000:.1f}}}}}',
            )
        )
        if cheat.concurrent_sessions and random_() < 0.8:
            self.concurrent_session(sid, text, ch, started, now)
        passed = 100.0 * score / max_score >= quiz.pass_pct
        return now, passed

    def prepared_quiz(self, quiz: Quiz) -> tuple[list[PreparedQuestion], float]:
        """Per-question constants and JSON fragments, built once per quiz and shard."""
        cached = self.quiz_cache.get(quiz.quiz_id)
        if cached is None:
            prepared = []
            for q in quiz.questions:
                topic_id = self.catalog.topics[q.topic_index].topic_id
                wrong = tuple(
                    f'"answer":"{o}","is_correct":false,"points":0.0,'
                    for o in "ABCD"
                    if o != q.correct_option
                )
                prepared.append(
                    (
                        q.topic_index,
                        q.discrimination,
                        q.difficulty,
                        q.reading_time_s,
                        q.max_points,
                        f'"question_id":"{q.question_id}","topic_id":"{topic_id}",',
                        f'"answer":"{q.correct_option}","is_correct":true,"points":{q.max_points:.1f},',
                        wrong,
                    )
                )
            cached = self.quiz_cache[quiz.quiz_id] = (prepared, quiz.max_score)
        return cached

    def concurrent_session(
        self, sid: str, text: CourseText, ch: Chapter, start: int, end: int
    ) -> None:
        """A second session from another network, open while the quiz runs (a helper)."""
        saved = (self.sp, self.delay)
        self.open_session(sid, "desktop", self.alt_net, allow_late=False)
        now = start + self.ri(5_000, 40_000)
        self.login(now, "desktop")
        step = max(10_000, (end - now) // 4)
        page = text.quiz_page[ch.chapter_id]
        while now < end:
            now += self.ri(2_000, step)
            self.emit(min(now, end), "page_view", page)
        self.emit(end + self.ri(5_000, 60_000), "logout", LOGOUT_USER)
        self.sp, self.delay = saved

    def submit_assignment(self, now: int, text: CourseText, ch: Chapter, eng: float) -> int:
        rnd = self.rnd
        a = ch.assignment
        assert a is not None
        self.emit(now, "page_view", text.assignment_page[ch.chapter_id])
        now += self.ri(60_000, 1_800_000)
        late = "true" if now > a.due_ms else "false"
        words = int(rnd.uniform(100, 400) + 1500 * eng * rnd.random())
        files = rnd.choice((0, 0, 1, 1, 1, 2, 3))
        self.emit(
            now,
            "assignment_submit",
            f'"event_type":"assignment_submit",{text.cpart}"payload":{{'
            f'"assignment_id":"{a.assignment_id}","chapter_id":"{ch.chapter_id}",'
            f'"is_late":{late},"word_count":{words},"attachment_count":{files}}}}}',
        )
        return now + self.ri(2_000, 30_000)

    def feedback(self, now: int, cpart: str, course: Course, ch: Chapter, eng: float) -> int:
        rnd = self.rnd
        kind = rnd.choice(("course", "chapter", "video", "quiz", "live_class"))
        if kind == "course":
            target = course.course_id
        elif kind == "chapter":
            target = ch.chapter_id
        elif kind == "video" and ch.videos:
            target = ch.videos[0].video_id
        elif kind == "live_class" and course.live_classes:
            target = course.live_classes[0].live_class_id
        else:
            kind, target = "quiz", ch.quiz.quiz_id
        rating_value = min(5, max(1, round(1 + 4 * eng + rnd.gauss(0.0, 0.9))))
        if rating_value >= 4:
            text = rnd.choice(FEEDBACK_GOOD)
        elif rating_value <= 2:
            text = rnd.choice(FEEDBACK_BAD)
        else:
            text = rnd.choice(FEEDBACK_NEUTRAL)
        if rnd.random() < 0.12:
            text += rnd.choice(FEEDBACK_CONTACT).format(email=self.email)
        rating = "null" if rnd.random() < 0.1 else str(rating_value)
        # json.dumps escapes any non-ASCII character: lines stay ASCII (one byte per character).
        self.emit(
            now,
            "feedback",
            f'"event_type":"feedback",{cpart}"payload":{{"target_type":"{kind}",'
            f'"target_id":"{target}","rating":{rating},"text":{json.dumps(text.strip())}}}}}',
        )
        return now + self.ri(20_000, 180_000)

    def live_session(
        self, sid: str, state: EnrollmentState, lc: LiveClass, device: str, net: str, eng: float
    ) -> None:
        rnd = self.rnd
        cid = state.course.course_id
        cpart = self.text[cid].cpart
        lid = lc.live_class_id
        payload = f'{cpart}"payload":{{"live_class_id":"{lid}"}}}}'
        join_body = f'"event_type":"live_class_join",{payload}'
        leave_body = f'"event_type":"live_class_leave",{payload}'
        self.open_session(sid, device, net)
        now = lc.starts_ms - self.ri(0, 10 * 60_000)
        self.login(now, device)
        self.emit(
            now + 3_000,
            "page_view",
            page_body(cpart, "live_class", None, f"/courses/{cid}/live/{lid}"),
        )
        joined = max(now + 5_000, lc.starts_ms + self.ri(-3 * 60_000, 8 * 60_000))
        # Leaves around the end; disengaged students more often leave early.
        if rnd.random() < 0.35 * (1.0 - eng):
            final_leave = joined + int((lc.ends_ms - joined) * rnd.uniform(0.2, 0.8))
        else:
            final_leave = lc.ends_ms + self.ri(-5 * 60_000, 5 * 60_000)
        final_leave = max(final_leave, joined + 60_000)
        intervals: list[tuple[int, int]] = []
        if rnd.random() < 0.15:
            # Connection dropped mid-class: leave, then join again a few minutes later.
            drop_at = joined + int((final_leave - joined) * rnd.uniform(0.2, 0.6))
            back_at = drop_at + self.ri(30_000, 5 * 60_000)
            if back_at < final_leave - 60_000:
                intervals.append((joined, drop_at))
                joined = back_at
        intervals.append((joined, final_leave))
        sends_last_leave = rnd.random() >= 0.1  # a closed laptop lid sends nothing
        for k, (a, b) in enumerate(intervals):
            self.emit(a, "live_class_join", join_body)
            last = k == len(intervals) - 1
            if not last or sends_last_leave:
                self.emit(b, "live_class_leave", leave_body)
            self.out.attendance.append((lid, sid, a, b, not last or sends_last_leave))
        self.logout(final_leave + self.ri(5_000, 60_000))


def _normal_stream(rng: np.random.Generator) -> Iterator[float]:
    while True:
        yield from rng.standard_normal(16_384).tolist()
