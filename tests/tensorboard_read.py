"""Read event-file directories with TensorBoard's own reader and print what it sees as JSON.

Usage: python3 tests/tensorboard_read.py DIR...
       python3 tests/tensorboard_read.py --hparams-view LOGDIR

For each directory (not recursive, as TensorBoard reads one run): the event files in it, the file
version, every scalar as [step, value, wall_time] by tag, and every hparams summary decoded as an
HParamsPluginData message (MessageToDict, field names as in the .proto). With --hparams-view:
what TensorBoard's HParams dashboard gets for LOGDIR, from the plugin's own request handlers
(get_experiment and list_session_groups over an event multiplexer). Used by
tests/tensorboard_test.ts; non-finite floats are printed as the strings "nan", "inf", "-inf".
"""

import json
import math
import os
import sys

from google.protobuf.json_format import MessageToDict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return x


def read(path):
    ea = EventAccumulator(path, size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    scalars = {
        tag: [[e.step, e.value, e.wall_time] for e in ea.Scalars(tag)]
        for tag in ea.Tags()["scalars"]
    }
    hparams = {}
    try:
        contents = ea.PluginTagToContent("hparams")
    except KeyError:  # no hparams summary in this run
        contents = {}
    for tag, content in contents.items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        hparams[tag] = MessageToDict(data, preserving_proto_field_name=True)
    return {
        "files": sorted(n for n in os.listdir(path) if "tfevents" in n),
        "file_version": ea.file_version,
        "scalars": scalars,
        "hparams": hparams,
    }


def hparams_view(logdir):
    from google.protobuf import json_format
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import backend_context
    from tensorboard.plugins.hparams import get_experiment
    from tensorboard.plugins.hparams import list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, logdir)
    tb = base_plugin.TBContext(logdir=logdir, multiplexer=mux, data_provider=provider)
    backend = backend_context.Context(tb)
    ctx = context.RequestContext()
    experiment = get_experiment.Handler(ctx, backend, "", api_pb2.GetExperimentRequest()).run()
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=1000)
    request.allowed_statuses.extend(
        [api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING]
    )
    groups = list_session_groups.Handler(ctx, backend, "", request).run()
    as_dict = lambda m: json_format.MessageToDict(m, preserving_proto_field_name=True)
    return {"experiment": as_dict(experiment), "session_groups": as_dict(groups)}


if sys.argv[1:2] == ["--hparams-view"]:
    print(json.dumps(finite(hparams_view(sys.argv[2]))))
else:
    print(json.dumps(finite({p: read(p) for p in sys.argv[1:]})))
