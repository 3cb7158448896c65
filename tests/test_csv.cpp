// io/csv: the CSV reader and writer (RFC 4180 quoting, columns by name, numbers with errors that
// name the file, line and column), and the files written through them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/csv.h"
#include "io/fs.h"
#include "io/metrics.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

namespace {

/// Every field of `t`, rows first.
std::vector<std::vector<std::string>> fields_of(const CsvTable& t) {
  std::vector<std::vector<std::string>> out;
  for (size_t r = 0; r < t.rows(); ++r) {
    out.emplace_back();
    for (size_t k = 0; k < t.header().size(); ++k) out.back().push_back(t.text(r, k));
  }
  return out;
}

}  // namespace

TEST(Csv, QuotingRoundTrip) {
  const std::vector<std::string> header = {"name", "note, with comma", "say \"hi\""};
  const std::vector<std::vector<std::string>> rows = {
      {"plain", "a,b", "\"quoted\""},
      {"two\nlines", "crlf\r\ninside", ""},
      {" spaced ", "", "tail\""},
  };
  CsvWriter w(header);
  for (const auto& r : rows) w.add_row(r);
  EXPECT_EQ(w.rows(), 3u);
  // Only the fields that need it are quoted, with inner quotes doubled.
  EXPECT_EQ(w.text(),
            "name,\"note, with comma\",\"say \"\"hi\"\"\"\n"
            "plain,\"a,b\",\"\"\"quoted\"\"\"\n"
            "\"two\nlines\",\"crlf\r\ninside\",\n"
            " spaced ,,\"tail\"\"\"\n");

  const CsvTable t = CsvTable::parse(w.text(), "t.csv");
  EXPECT_EQ(t.header(), header);
  EXPECT_EQ(fields_of(t), rows);
  // A row starts on the line where its first field does: row 1's two quoted line breaks move row 2 down.
  EXPECT_EQ(t.line(0), 2);
  EXPECT_EQ(t.line(1), 3);
  EXPECT_EQ(t.line(2), 6);

  cuvae::testing::ScopedTempDir dir;
  w.write(dir.file("t.csv"));
  EXPECT_EQ(read_file(dir.file("t.csv")), w.text());
  EXPECT_EQ(fields_of(CsvTable::read(dir.file("t.csv"))), rows);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"t.csv"});  // no temporary file left
}

TEST(Csv, OneEmptyFieldIsNotABlankLine) {
  CsvWriter w({"only"});
  w.add_row({""});
  w.add_row({"x"});
  EXPECT_EQ(w.text(), "only\n\"\"\nx\n");
  const CsvTable t = CsvTable::parse(w.text(), "one.csv");
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.text(0, 0), "");
  EXPECT_EQ(t.text(1, 0), "x");
}

TEST(Csv, ReadsCrlfAndSkipsBlankLines) {
  const CsvTable t = CsvTable::parse("a,b\r\n\r\n1,2\r\n\n3,4", "w.csv");
  EXPECT_EQ(t.header(), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.text(0, 1), "2");
  EXPECT_EQ(t.line(1), 5);
  EXPECT_EQ(t.numbers("b"), (std::vector<double>{2, 4}));
}

TEST(Csv, PlainTablesAreTheFieldsJoinedWithCommas) {
  // The files the tests and the dashboard read byte for byte keep their format.
  CsvWriter w({"true\\predicted", "cat", "dog"});
  w.add_row({"cat", "50", "3"});
  w.add_row({"dog", "4", "40"});
  EXPECT_EQ(w.text(), "true\\predicted,cat,dog\ncat,50,3\ndog,4,40\n");
  w.keep_rows(1);
  EXPECT_EQ(w.text(), "true\\predicted,cat,dog\ncat,50,3\n");
  w.keep_rows(0);
  EXPECT_EQ(w.text(), "true\\predicted,cat,dog\n");
  EXPECT_EQ(w.rows(), 0u);
  EXPECT_CONTAINS(error_of([&] { w.add_row({"x"}); }), "row has 1 fields, expected 3");
}

TEST(Csv, NumbersAndBadNumbersNameLineAndColumn) {
  const CsvTable t = CsvTable::parse("epoch,loss,kl\n1,2.5,nan\n2, 1e-7 ,-inf\n3,abc,\n", "run/metrics.csv");
  EXPECT_EQ(t.numbers("epoch"), (std::vector<double>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(t.number(1, 1), 1e-7);
  EXPECT_TRUE(std::isnan(t.number(0, 2)));
  EXPECT_EQ(t.number(1, 2), -INFINITY);
  EXPECT_TRUE(std::isnan(t.number(2, 2)));  // an empty field is a missing value
  EXPECT_FALSE(t.try_number(2, 1).has_value());
  EXPECT_EQ(error_of([&] { t.numbers("loss"); }),
            "run/metrics.csv: line 4, column 'loss': expected a number, got 'abc'");
  EXPECT_CONTAINS(error_of([&] { CsvTable::parse("a\n1\n2x\n", "x.csv").numbers("a"); }), "x.csv: line 3, column 'a'");
}

TEST(Csv, MissingColumnNamesTheFileAndItsColumns) {
  const CsvTable t = CsvTable::parse("epoch,loss\n1,2\n", "m.csv");
  EXPECT_FALSE(t.find("kl").has_value());
  EXPECT_EQ(t.find("loss"), std::optional<size_t>(1));
  EXPECT_EQ(t.column("loss"), 1u);
  EXPECT_EQ(error_of([&] { t.column("kl"); }), "m.csv: no column 'kl' (columns: epoch, loss)");
  EXPECT_EQ(error_of([&] { t.numbers("kl"); }), "m.csv: no column 'kl' (columns: epoch, loss)");
}

TEST(Csv, MalformedFilesAreRefusedWithTheirLine) {
  EXPECT_EQ(error_of([&] { CsvTable::parse("", "e.csv"); }), "e.csv: empty file (expected a CSV header)");
  EXPECT_EQ(error_of([&] { CsvTable::parse("\n\n", "e.csv"); }), "e.csv: empty file (expected a CSV header)");
  EXPECT_EQ(error_of([&] { CsvTable::parse("a,b\n1,2\n3\n", "r.csv"); }), "r.csv: line 3 has 1 fields, expected 2");
  EXPECT_EQ(error_of([&] { CsvTable::parse("a,b\n1,\"open\n", "q.csv"); }),
            "q.csv: line 2: a quoted field is never closed");
  EXPECT_CONTAINS(error_of([&] { CsvTable::parse("a,b\n\"x\"y,2\n", "q.csv"); }), "q.csv: line 2: text after the closing quote");
  EXPECT_CONTAINS(error_of([&] { CsvTable::parse("a,b\nx\"y,2\n", "q.csv"); }), "q.csv: line 2: '\"' inside an unquoted field");
  cuvae::testing::ScopedTempDir dir;
  EXPECT_EQ(error_of([&] { CsvTable::read(dir.file("none.csv")); }), dir.file("none.csv") + ": no such file");
}

TEST(Csv, MetricsCsvWritesThroughTheWriterAndResumesThroughTheReader) {
  cuvae::testing::ScopedTempDir dir;
  const std::string path = dir.file("metrics.csv");
  {
    MetricsCsv m(path, {"epoch", "loss"}, false);
    m.append({1, 0.1});
    m.append({2, std::nan("")});
    m.append({3, 1e20});
  }
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.1\n2,nan\n3,1e+20\n");
  // A CRLF file with a blank line resumes as LF, every row kept, and drops rows as asked.
  write_file_atomic(path, "epoch,loss\r\n1,0.1\r\n\r\n2,nan\r\n");
  MetricsCsv m(path, {"epoch", "loss"}, true);
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.1\n2,nan\n");
  m.keep_rows(1);
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.1\n");
  const CsvTable t = CsvTable::read(path);
  EXPECT_EQ(t.numbers("loss"), std::vector<double>{0.1});
  write_file_atomic(path, "epoch,loss\n1,\"0.1\n");
  EXPECT_CONTAINS(error_of([&] { MetricsCsv bad(path, {"epoch", "loss"}, true); }), "never closed");
}
