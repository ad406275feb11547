// Descriptors handed between processes over a Unix socket (SCM_RIGHTS): the
// brokers give the collector what they opened, and a broker's child opening a
// file as another user gives it to the broker. One message: a 32-bit word
// (its meaning is the caller's: ok/refused, or 0/-errno) and, when there is
// one, the descriptor.
#pragma once

#include <cstdint>

namespace rsttrace {

// fd < 0: the word alone. False: the socket is gone.
bool send_word_and_fd(int socket, int32_t word, int fd);
// False: the socket is gone, or the message was short. fd is -1 when none came
// (then any descriptor that did come is closed); it is close-on-exec.
bool receive_word_and_fd(int socket, int32_t& word, int& fd);

}  // namespace rsttrace
