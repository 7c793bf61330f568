"""AWS Glue job: load the KPIs of the run `--run-id` into the KPI store (DynamoDB with
`--table-prefix`); with `--finish-run true` also archive, mark done, report and notify.

Arguments and shipping: `playcount.integrations.glue`, docs/glue.md.
"""

from playcount.integrations.glue import load_job, main

main(load_job)
