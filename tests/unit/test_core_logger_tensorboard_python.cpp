// Cross-check of our TensorBoard event files with an independent reader: Python's TFRecord framing and CRC32C
// written from the format description, and the Event protos decoded by Google's protobuf library (Debian's
// python3-protobuf) from a descriptor of tensorflow's event.proto / summary.proto fields. Skipped when
// /usr/bin/python3 or its protobuf module is missing (scripts/setup.sh installs both).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/formats/tensorboard.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

const char* kReader = R"PY(
import json, struct, sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

F = descriptor_pb2.FieldDescriptorProto
fdp = descriptor_pb2.FileDescriptorProto(name="nanochat_check_event.proto", package="tensorflow", syntax="proto3")
summary = fdp.message_type.add(name="Summary")
value = summary.nested_type.add(name="Value")
value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".tensorflow.Summary.Value")
event = fdp.message_type.add(name="Event")
event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".tensorflow.Summary")
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
desc = pool.FindMessageTypeByName("tensorflow.Event")
Event = message_factory.GetMessageClass(desc) if hasattr(message_factory, "GetMessageClass") else message_factory.MessageFactory(pool).GetPrototype(desc)

data = open(sys.argv[1], "rb").read()
pos, out = 0, []
while pos < len(data):
    header = data[pos:pos + 8]
    (length,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked(header), "length crc"
    body = data[pos + 12:pos + 12 + length]
    assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == masked(body), "data crc"
    ev = Event()
    ev.ParseFromString(body)
    out.append({"wall_time": ev.wall_time, "step": ev.step, "file_version": ev.file_version,
                "values": [[v.tag, v.simple_value] for v in ev.summary.value]})
    pos += 16 + length
print(json.dumps(out))
)PY";

}  // namespace

TEST(TensorBoardPython, EventFileReadsWithGoogleProtobuf) {
  if (std::system("/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with python3-protobuf not installed";
  fs::path dir = fs::temp_directory_path() / fmt::format("nanochat_tbpy_{}", ::getpid());
  fs::remove_all(dir);
  fs::path events;
  {
    EventWriter w(dir);
    events = w.path();
    w.add_scalars(0, {{"train/loss", 10.75}, {"train/lrm", 1.0}}, 1700000000.5);
    w.add_scalars(300, {{"train/loss", 3.5}, {"val/bpb", 0.875}}, 1700000100.25);
    w.add_scalar("core_metric", 0.125, 1 << 20, 1700000200.0);
  }
  write_file_atomic(dir / "reader.py", kReader);
  std::string cmd = fmt::format("/usr/bin/python3 {} {} > {} 2>&1", (dir / "reader.py").string(), events.string(),
                                (dir / "out.json").string());
  int rc = std::system(cmd.c_str());
  std::string output = read_file(dir / "out.json");
  ASSERT_EQ(rc, 0) << output;
  auto got = nlohmann::json::parse(output);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0]["file_version"], "brain.Event:2");
  EXPECT_EQ(got[1]["step"], 0);
  EXPECT_EQ(got[1]["wall_time"], 1700000000.5);
  EXPECT_EQ(got[1]["values"], nlohmann::json::parse(R"([["train/loss", 10.75], ["train/lrm", 1.0]])"));
  EXPECT_EQ(got[2]["step"], 300);
  EXPECT_EQ(got[2]["values"], nlohmann::json::parse(R"([["train/loss", 3.5], ["val/bpb", 0.875]])"));
  EXPECT_EQ(got[3]["step"], 1 << 20);
  EXPECT_EQ(got[3]["values"][0][0], "core_metric");
  EXPECT_EQ(got[3]["values"][0][1], 0.125);
  fs::remove_all(dir);
}
