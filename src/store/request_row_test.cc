#include "store/request_row.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace sluice::store {
namespace {

TEST(RowIdTest, KeepsShortIdsInlineAndLongOnesWhole) {
  const std::string made = "req_0123456789abcdef0123456789abcdef";  // 36 bytes
  EXPECT_EQ(RowId(made).view(), made);
  const std::string edge(RowId::kInline, 'x');
  EXPECT_EQ(RowId(edge).view(), edge);
  const std::string longer(RowId::kInline + 1, 'y');
  EXPECT_EQ(RowId(longer).view(), longer);
  const std::string huge(4'096, 'z');
  RowId a(huge);
  RowId copy = a;  // deep copy: both stay valid
  RowId moved = std::move(a);
  EXPECT_EQ(copy.view(), huge);
  EXPECT_EQ(moved.view(), huge);
  copy = RowId(made);
  EXPECT_EQ(copy.view(), made);
  EXPECT_EQ(RowId().view(), "");
}

TEST(LabelInternerTest, EqualLabelsShareOneValueAndDifferentOnesDoNot) {
  LabelInterner interner;
  RowLabelsPtr a = interner.Intern("key-1", "paid", "m", "");
  RowLabelsPtr b = interner.Intern(std::string("key-1"), "paid", "m", "");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->key_id, "key-1");
  EXPECT_EQ(a->tier, "paid");
  EXPECT_EQ(a->model, "m");
  EXPECT_EQ(a->worker_id, "");
  // Any field differing makes another value, including the split between
  // fields ("ab"+"c" is not "a"+"bc").
  EXPECT_NE(interner.Intern("key-1", "paid", "m", "w1").get(), a.get());
  EXPECT_NE(interner.Intern("ab", "c", "m", "").get(), interner.Intern("a", "bc", "m", "").get());
  EXPECT_EQ(interner.size(), 4u);
}

TEST(LabelInternerTest, PastCapacityValuesAreCopiedNotKept) {
  LabelInterner interner(2);
  RowLabelsPtr a = interner.Intern("k1", "free", "m", "");
  interner.Intern("k2", "free", "m", "");
  RowLabelsPtr c1 = interner.Intern("k3", "free", "m", "");
  RowLabelsPtr c2 = interner.Intern("k3", "free", "m", "");
  EXPECT_EQ(interner.size(), 2u);
  EXPECT_EQ(c1->key_id, "k3");
  EXPECT_EQ(*c1, *c2);
  EXPECT_NE(c1.get(), c2.get());                                     // not kept: each call copies
  EXPECT_EQ(interner.Intern("k1", "free", "m", "").get(), a.get());  // kept ones still shared
}

TEST(LabelInternerTest, StoresTextRepairedAsDatabasesKeepIt) {
  LabelInterner interner;
  RowLabelsPtr bad = interner.Intern("k\xff", std::string("pa\0id", 5), "m", "");
  EXPECT_EQ(bad->key_id, "k\uFFFD");
  EXPECT_EQ(bad->tier, "pa\uFFFDid");
  // Repaired text is not found again under its raw form: a fresh copy each
  // time, equal in value.
  RowLabelsPtr again = interner.Intern("k\xff", std::string("pa\0id", 5), "m", "");
  EXPECT_EQ(*again, *bad);
}

TEST(LabelInternerTest, ThreadsInterningTheSameValueGetOnePointer) {
  LabelInterner interner;
  constexpr int kThreads = 4;
  std::vector<RowLabelsPtr> got(kThreads * 100);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) got[t * 100 + i] = interner.Intern("k", "paid", "m", "");
    });
  }
  for (auto& t : threads) t.join();
  for (const RowLabelsPtr& p : got) EXPECT_EQ(p.get(), got.front().get());
  EXPECT_EQ(interner.size(), 1u);
}

TEST(RequestRowTest, ConvertsToAndFromARecordWithoutLoss) {
  RequestRecord r;
  r.id = "req_" + std::string(60, 'a');  // longer than the inline id
  r.key_id = "key-7";
  r.tier = "enterprise";
  r.model = "sluice-sim-small";
  r.worker_id = "worker-2";
  r.stage = RequestStage::kFailed;
  r.http_status = 503;
  r.tokens_used = 17;
  r.batch_id = 99;
  r.latency_ms = 12.5;
  r.created_at = WallTime(std::chrono::microseconds(1'700'000'000'000'000));
  r.completed_at = r.created_at + std::chrono::milliseconds(12);
  r.error = "model 'm' failed; internal: boom";
  const RequestRow row = RequestRow::FromRecord(r);
  EXPECT_TRUE(row.finished());
  const RequestRecord back = row.ToRecord();
  EXPECT_EQ(back.id, r.id);
  EXPECT_EQ(back.key_id, r.key_id);
  EXPECT_EQ(back.tier, r.tier);
  EXPECT_EQ(back.model, r.model);
  EXPECT_EQ(back.worker_id, r.worker_id);
  EXPECT_EQ(back.stage, r.stage);
  EXPECT_EQ(back.http_status, r.http_status);
  EXPECT_EQ(back.tokens_used, r.tokens_used);
  EXPECT_EQ(back.batch_id, r.batch_id);
  EXPECT_EQ(back.latency_ms, r.latency_ms);
  EXPECT_EQ(back.created_at, r.created_at);
  EXPECT_EQ(back.completed_at, r.completed_at);
  EXPECT_EQ(back.error, r.error);
  RequestRecord admission;
  admission.id = "req_1";
  EXPECT_FALSE(RequestRow::FromRecord(admission).finished());
}

}  // namespace
}  // namespace sluice::store
