"""Time-driven sources (定时): drills (系统演练) and daily programmes (日常广播) on APScheduler.

The package exports the two job functions because APScheduler stores jobs by reference
(``broadcast.schedule:run_drill_job``, ``broadcast.schedule:run_programme_job``): these two names
are the only re-exports, and they must stay loadable for jobs stored by earlier installations. A
reference that moved is rewritten in the job store before a scheduler loads it
(``broadcast.schedule.jobstore.MOVED_JOB_FUNCS``).
"""

from broadcast.schedule.drill_service import run_drill_job
from broadcast.schedule.programmes import run_programme_job

__all__ = ["run_drill_job", "run_programme_job"]
