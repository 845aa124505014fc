"""Azure Functions entry points (Python v2 model). Wiring only: each trigger unpacks its
input, calls one function in shared.pipeline, and logs or raises. See DESIGN.md."""
from __future__ import annotations

import json

import azure.functions as func

from shared import pipeline
from shared.logsafe import get_logger

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = get_logger("function_app")  # control characters escaped (shared/logsafe.py)


@app.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%", run_on_startup=False,
                   use_monitor=True)
def poll_notifications(timer: func.TimerRequest) -> None:
    """SQS notifications -> one work item per S3 object (singleton, every minute)."""
    for s in pipeline.poll_notifications(pipeline.connector()):
        log.info("source %s: received %d, enqueued %d, skipped %d %s, poisoned %d, backlog %s",
                 s.source, s.messages_received, s.objects_enqueued, s.objects_skipped,
                 s.skipped_reasons, s.messages_poisoned, s.sqs_backlog)


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def process_object(msg: func.QueueMessage) -> None:
    """One S3 object -> its table, through the Logs Ingestion API. Raises to be retried."""
    stats = pipeline.process_work_item(msg.get_body(), dequeue_count=msg.dequeue_count or 1)
    log.info("%s/%s: %s, %d in, %d out, %d dropped, %d skipped", stats.bucket, stats.key,
             stats.outcome, stats.records_in, stats.records_out, stats.records_dropped,
             stats.records_skipped)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Component checks: 200 when every one passes, 503 otherwise."""
    status, body = pipeline.check_health()
    return func.HttpResponse(json.dumps(body, indent=1), status_code=status,
                             mimetype="application/json")
