"""The offline checks of infra/, one module per thing checked (tools/validate_infra.py runs them):

* bicep.py           the Azure side, read with pycep-parser: parse, streams / DCR, RBAC, hardening
* settings.py        main.bicep's app settings and the parameters example vs. shared.config
* kql.py             every workbook, alert and transform query, analysed by Kusto.Language
* health_values.py   the health-table values those queries compare with vs. what the code writes
* cloudformation.py  the AWS side: cfn-lint, the IAM role and queue policies, least privilege
* checkov.py         checkov's own rules on both sides
* common.py          paths, Stage and the summary, the readers several modules share
"""
