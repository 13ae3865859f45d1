"""Recurring curation: daily, stopped until a user turns it on."""

import dagster as dg

from shed_pipeline.jobs import shed_curation_job

daily_curation_schedule = dg.ScheduleDefinition(
    name="daily_curation_schedule",
    job=shed_curation_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-curate every day at 03:00 UTC with the default configuration.",
)
