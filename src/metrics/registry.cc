#include "metrics/registry.h"

#include <algorithm>
#include <stdexcept>

#include "metrics/text_format.h"

namespace sluice::metrics {
namespace {

// Sorts by label name and checks the names.
Labels Canonical(const Labels& labels, bool is_histogram) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::string& name = sorted[i].first;
    if (!IsValidLabelName(name)) throw std::invalid_argument("invalid label name: " + name);
    if (is_histogram && name == "le") {
      throw std::invalid_argument("\"le\" is reserved for histogram buckets");
    }
    if (i > 0 && sorted[i - 1].first == name) {
      throw std::invalid_argument("label name repeated: " + name);
    }
  }
  return sorted;
}

// Whether `other` is one of the sample names of histogram `base`.
bool IsHistogramSampleName(std::string_view base, std::string_view other) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (other.size() == base.size() + suffix.size() && other.starts_with(base) &&
        other.ends_with(suffix)) {
      return true;
    }
  }
  return false;
}

// Appends `{a="x",b="y"` plus `,le="<le>"` if given, then `}` (nothing at all
// when there are no labels and no le).
void AppendLabels(std::string* out, const Labels& labels, const char* le = nullptr) {
  if (labels.empty() && le == nullptr) return;
  out->push_back('{');
  bool first = true;
  auto append_pair = [&](std::string_view name, std::string_view value) {
    if (!first) out->push_back(',');
    first = false;
    out->append(name);
    out->append("=\"");
    AppendEscapedLabelValue(out, value);
    out->push_back('"');
  };
  for (const auto& [name, value] : labels) append_pair(name, value);
  if (le != nullptr) append_pair("le", le);
  out->push_back('}');
}

void AppendSample(std::string* out, std::string_view name, std::string_view suffix,
                  const Labels& labels, std::string_view value, const char* le = nullptr) {
  out->append(name);
  out->append(suffix);
  AppendLabels(out, labels, le);
  out->push_back(' ');
  out->append(value);
  out->push_back('\n');
}

}  // namespace

struct Registry::Series {
  Labels labels;  // canonical
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> callback;          // a callback gauge when set
  std::function<double()> counter_callback;  // a callback counter when set
};

struct Registry::Family {
  std::string name;
  std::string help;
  Type type = Type::kCounter;
  std::vector<double> bounds;                   // histograms only; set by the first series
  std::vector<std::unique_ptr<Series>> series;  // registration order
  std::map<Labels, Series*> by_labels;
};

Registry::Registry() = default;
Registry::~Registry() = default;

const char* Registry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Registry::Family& Registry::FamilyFor(std::string_view name, std::string_view help, Type type) {
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    if (it->second->type != type) {
      throw std::logic_error("metric " + std::string(name) + " already registered as " +
                             TypeName(it->second->type));
    }
    return *it->second;
  }
  if (!IsValidMetricName(name)) {
    throw std::invalid_argument("invalid metric name: " + std::string(name));
  }
  // A histogram's samples use three derived names; none may clash with
  // another family's samples.
  for (const auto& family : families_) {
    if ((family->type == Type::kHistogram && IsHistogramSampleName(family->name, name)) ||
        (type == Type::kHistogram && IsHistogramSampleName(name, family->name))) {
      throw std::logic_error("metric " + std::string(name) + " clashes with the samples of " +
                             family->name);
    }
  }
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  Family* raw = family.get();
  families_.push_back(std::move(family));
  by_name_.emplace(raw->name, raw);
  return *raw;
}

Registry::Series& Registry::SeriesFor(Family& family, Labels canonical) {
  if (auto it = family.by_labels.find(canonical); it != family.by_labels.end()) {
    return *it->second;
  }
  auto series = std::make_unique<Series>();
  series->labels = std::move(canonical);
  Series* raw = series.get();
  family.series.push_back(std::move(series));
  family.by_labels.emplace(raw->labels, raw);
  return *raw;
}

Counter* Registry::GetCounter(std::string_view name, std::string_view help, const Labels& labels) {
  Labels canonical = Canonical(labels, /*is_histogram=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = SeriesFor(FamilyFor(name, help, Type::kCounter), std::move(canonical));
  if (series.counter_callback) {
    throw std::logic_error("counter " + std::string(name) + " is a callback counter");
  }
  if (!series.counter) series.counter = std::make_unique<Counter>();
  return series.counter.get();
}

Gauge* Registry::GetGauge(std::string_view name, std::string_view help, const Labels& labels) {
  Labels canonical = Canonical(labels, /*is_histogram=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = SeriesFor(FamilyFor(name, help, Type::kGauge), std::move(canonical));
  if (series.callback) {
    throw std::logic_error("gauge " + std::string(name) + " is a callback gauge");
  }
  if (!series.gauge) series.gauge = std::make_unique<Gauge>();
  return series.gauge.get();
}

Histogram* Registry::GetHistogram(std::string_view name, std::string_view help,
                                  const Labels& labels, const std::vector<double>& upper_bounds) {
  // Validate labels and bounds (throws) before anything is registered.
  Labels canonical = Canonical(labels, /*is_histogram=*/true);
  auto histogram = std::make_unique<Histogram>(upper_bounds);
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = FamilyFor(name, help, Type::kHistogram);
  if (!family.series.empty() && family.bounds != upper_bounds) {
    throw std::logic_error("histogram " + std::string(name) + " registered with other buckets");
  }
  Series& series = SeriesFor(family, std::move(canonical));
  if (!series.histogram) {
    family.bounds = upper_bounds;
    series.histogram = std::move(histogram);
  }
  return series.histogram.get();
}

void Registry::AddCallbackGauge(std::string_view name, std::string_view help, const Labels& labels,
                                std::function<double()> fn) {
  if (!fn) throw std::invalid_argument("callback gauge without a function");
  Labels canonical = Canonical(labels, /*is_histogram=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = SeriesFor(FamilyFor(name, help, Type::kGauge), std::move(canonical));
  if (series.gauge) {
    throw std::logic_error("gauge " + std::string(name) + " is not a callback gauge");
  }
  series.callback = std::move(fn);
}

void Registry::AddCallbackCounter(std::string_view name, std::string_view help,
                                  const Labels& labels, std::function<double()> fn) {
  if (!fn) throw std::invalid_argument("callback counter without a function");
  Labels canonical = Canonical(labels, /*is_histogram=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = SeriesFor(FamilyFor(name, help, Type::kCounter), std::move(canonical));
  if (series.counter) {
    throw std::logic_error("counter " + std::string(name) + " is not a callback counter");
  }
  series.counter_callback = std::move(fn);
}

bool Registry::RemoveCallback(std::string_view name, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto family_it = by_name_.find(name);
  if (family_it == by_name_.end()) return false;
  Family& family = *family_it->second;
  Labels canonical = labels;
  std::sort(canonical.begin(), canonical.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  auto it = family.by_labels.find(canonical);
  if (it == family.by_labels.end() || !(it->second->callback || it->second->counter_callback)) {
    return false;
  }
  Series* series = it->second;
  family.by_labels.erase(it);
  std::erase_if(family.series, [series](const auto& s) { return s.get() == series; });
  return true;
}

std::vector<Registry::Reading> Registry::Read(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Reading> out;
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return out;
  const Family& family = *it->second;
  out.reserve(family.series.size());
  for (const auto& series : family.series) {
    Reading r;
    r.labels = series->labels;
    switch (family.type) {
      case Type::kCounter:
        r.value = series->counter_callback ? series->counter_callback()
                                           : static_cast<double>(series->counter->value());
        break;
      case Type::kGauge:
        r.value = series->callback ? series->callback() : series->gauge->value();
        break;
      case Type::kHistogram:
        r.histogram = series->histogram->snapshot();
        break;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string Registry::RenderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& family : families_) {
    if (family->series.empty()) continue;
    out.append("# HELP ").append(family->name).push_back(' ');
    AppendEscapedHelp(&out, family->help);
    out.append("\n# TYPE ").append(family->name).push_back(' ');
    out.append(TypeName(family->type)).push_back('\n');
    for (const auto& series : family->series) {
      const Labels& labels = series->labels;
      switch (family->type) {
        case Type::kCounter:
          AppendSample(&out, family->name, "", labels,
                       series->counter_callback ? FormatNumber(series->counter_callback())
                                                : std::to_string(series->counter->value()));
          break;
        case Type::kGauge:
          AppendSample(
              &out, family->name, "", labels,
              FormatNumber(series->callback ? series->callback() : series->gauge->value()));
          break;
        case Type::kHistogram: {
          const Histogram::Snapshot s = series->histogram->snapshot();
          uint64_t cumulative = 0;
          for (size_t i = 0; i < s.counts.size(); ++i) {
            cumulative += s.counts[i];
            const std::string le =
                i < s.upper_bounds.size() ? FormatNumber(s.upper_bounds[i]) : "+Inf";
            AppendSample(&out, family->name, "_bucket", labels, std::to_string(cumulative),
                         le.c_str());
          }
          AppendSample(&out, family->name, "_sum", labels, FormatNumber(s.sum));
          AppendSample(&out, family->name, "_count", labels, std::to_string(s.count));
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace sluice::metrics
