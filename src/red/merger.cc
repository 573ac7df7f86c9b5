// RED merge on the control core: cumulative series from the workers' harvests, bounded.
// Control core; allocates.
#include "red/merger.h"

#include <algorithm>
#include <cstring>

#include "spanfeed/packet.h"

namespace spanfeed::red {

std::string Report::server_label(const SeriesKey& k) const {
  if (k.other) return std::string(kOtherEndpoint);
  if (k.service != kNoService && k.service < service_names.size()) return service_names[k.service];
  if (k.ip_version == 0) return "";
  IpAddr ip{};
  std::memcpy(ip.bytes, k.ip, sizeof(ip.bytes));
  char buf[64];
  const size_t n = format_ip(ip, k.ip_version, buf, sizeof(buf));
  std::string out(buf, n);
  if (k.ip_version == 6) out = "[" + out + "]";
  return out + ":" + std::to_string(k.port);
}

Merger::Merger(const Shared& shared, size_t workers) : sh_(shared), worker_series_(workers, 0) {}

Merger::Merged* Merger::other_for(const SeriesKey& k) {
  SeriesKey o;
  o.protocol = k.protocol;
  o.status = k.status;
  o.labels = k.labels;
  o.other = 1;
  std::string bytes(reinterpret_cast<const char*>(&o), o.size());
  auto [it, fresh] = table_.try_emplace(std::move(bytes));
  if (fresh) {
    it->second.key = o;
    it->second.hist.assign(sh_.buckets(), 0);
    ++others_;
  }
  return &it->second;
}

void Merger::add(size_t worker, const Delta& d, double now_s) {
  if (worker < worker_series_.size()) worker_series_[worker] = d.series;
  folded_records_worker_ += d.folded_records;
  folded_series_worker_ += d.folded_series;
  skipped_ += d.skipped;
  const size_t nb = sh_.buckets();
  // Series idle long enough to give up their room, oldest first (computed when first needed).
  std::vector<std::pair<double, const std::string*>> idle;
  bool idle_listed = false;
  size_t next_idle = 0;
  auto make_room = [&]() {
    if (!idle_listed) {
      idle_listed = true;
      for (const auto& [bytes, m] : table_) {
        if (!m.key.other && now_s - m.last_s >= sh_.retire_idle_s) idle.emplace_back(m.last_s, &bytes);
      }
      std::sort(idle.begin(), idle.end());
    }
    while (next_idle < idle.size()) {
      auto it = table_.find(*idle[next_idle++].second);
      if (it == table_.end() || now_s - it->second.last_s < sh_.retire_idle_s) continue;
      table_.erase(it);
      ++retired_;
      return true;
    }
    return false;
  };
  for (size_t i = 0; i < d.size(); ++i) {
    const SeriesKey& k = d.keys[i];
    const Counts& c = d.counts[i];
    const uint64_t* h = &d.hist[i * nb];
    std::string bytes(reinterpret_cast<const char*>(&k), k.size());
    auto it = table_.find(bytes);
    Merged* m = nullptr;
    if (it != table_.end()) {
      m = &it->second;
    } else if (k.other) {
      m = other_for(k);
    } else if (table_.size() - others_ < sh_.max_series || make_room()) {
      it = table_.try_emplace(std::move(bytes)).first;
      m = &it->second;
      m->key = k;
      m->hist.assign(nb, 0);
    } else {
      m = other_for(k);
      folded_records_merge_ += c.requests;
    }
    m->c.add(c);
    for (size_t b = 0; b < nb; ++b) m->hist[b] += h[b];
    m->last_s = now_s;
  }
}

std::shared_ptr<const Report> Merger::report() const {
  auto r = std::make_shared<Report>();
  const size_t nb = sh_.buckets();
  r->bounds_us = sh_.bounds_us;
  r->series.reserve(table_.size());
  r->hist.reserve(table_.size() * nb);
  for (const auto& [bytes, m] : table_) {
    r->series.push_back({m.key, m.c, r->hist.size()});
    r->hist.insert(r->hist.end(), m.hist.begin(), m.hist.end());
  }
  for (const auto& s : sh_.services) r->service_names.push_back(s.name);
  r->worker_series = worker_series_;
  r->folded_records_worker = folded_records_worker_;
  r->folded_series_worker = folded_series_worker_;
  r->folded_records_merge = folded_records_merge_;
  r->retired_series = retired_;
  r->skipped = skipped_;
  return r;
}

}  // namespace spanfeed::red
