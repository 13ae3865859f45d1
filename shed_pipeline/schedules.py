"""Recurring curation: daily, stopped until a user turns it on."""

import dagster as dg

from shed_pipeline.jobs import JOB_NAME

daily_curation_schedule = dg.ScheduleDefinition(
    name="daily_curation_schedule",
    job_name=JOB_NAME,  # by name: the definitions hold the job, built for the shard count in use
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-curate every day at 03:00 UTC with the default configuration.",
)
