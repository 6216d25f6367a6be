// ZooKeeper's four-letter words, answered on the client port: a connection whose first four
// bytes are one of these words gets a text answer and is closed.
#pragma once

#include <string>

#include "daemon/config.h"
#include "daemon/replica/pipeline.h"

namespace qfs {

// True if `word` is a four-letter word this server knows (whitelisted or not).
bool IsFourLetterWord(const std::string& word);
// The answer to `word` (ruok, srvr, stat, mntr, conf, envi, dirs, isro).
std::string AnswerFourLetterWord(const std::string& word, const Config& config, Pipeline& pipeline);

}  // namespace qfs
