// bench/shapes/mobilenet_v1_1.0_224.txt (written by bench/make_shapes.py from the Python
// architecture) lists exactly the layers the C++ derivation in net_layers.h produces, so the
// benchmarks, the C++ tests and the Python package agree on every MobileNetV1 shape.
#include <cstdint>
#include <cstdio>
#include <string>

#include "net_layers.h"
#include "test_support.h"

namespace mbf_test {
namespace {

TEST(ShapesFile, MatchesTheCxxDerivation) {
  const std::string path = std::string(MBF_SOURCE_DIR) + "/bench/shapes/mobilenet_v1_1.0_224.txt";
  const auto from_file = mbf_support::read_shapes_file(path);
  const auto derived = mbf_support::mobilenet_v1_layers(1.0, 224, 224, true, 1000);
  ASSERT_EQ(from_file.size(), derived.size()) << path;
  std::int64_t macs = 0;
  for (std::size_t i = 0; i < derived.size(); ++i) {
    EXPECT_EQ(from_file[i], derived[i]) << "line " << i << ": file '" << from_file[i].line() << "', derived '"
                                        << derived[i].line() << "'";
    macs += derived[i].macs();
  }
  EXPECT_EQ(macs, 568740352) << "the paper's (and mobilenet-fast info's) 1.0/224 multiply-adds";
}

TEST(ShapesFile, AlphaTotalsMatchThePaper) {
  // Multiply-adds of MobileNetV1 at 224 (README: 569M, 325M, 149M, 41M).
  const struct {
    double alpha;
    std::int64_t millions;
  } rows[] = {{1.0, 569}, {0.75, 325}, {0.5, 149}, {0.25, 41}};
  for (const auto& r : rows) {
    std::int64_t macs = 0;
    for (const auto& L : mbf_support::mobilenet_v1_layers(r.alpha, 224, 224)) macs += L.macs();
    EXPECT_EQ((macs + 500000) / 1000000, r.millions) << "alpha " << r.alpha;
  }
}

TEST(ShapesFile, BadLinesAreRejected) {
  const std::string path = testing::TempDir() + "mbf_bad_shapes.txt";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("# comment\nstem conv3x3 224 224 3 32 2 0,0,1\n", f);
    std::fclose(f);
  }
  EXPECT_THROW(mbf_support::read_shapes_file(path), std::runtime_error);
  EXPECT_THROW(mbf_support::read_shapes_file(path + ".missing"), std::runtime_error);
}

}  // namespace
}  // namespace mbf_test
