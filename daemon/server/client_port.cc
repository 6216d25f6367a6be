#include "daemon/server/client_port.h"

#include <asio.hpp>

#include "consensus/util/log.h"
#include "daemon/server/four_letter.h"

namespace qfs {

struct ClientPort::Impl {
  Config config;
  Pipeline* pipeline;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work;

  void Accept() {
    acceptor.async_accept([this](std::error_code ec, asio::ip::tcp::socket sock) {
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          QLOG_WARN("accept: %s", ec.message().c_str());
          Accept();
        }
        return;
      }
      Serve(std::make_shared<asio::ip::tcp::socket>(std::move(sock)));
      Accept();
    });
  }

  void Serve(std::shared_ptr<asio::ip::tcp::socket> sock) {
    auto buf = std::make_shared<std::array<char, 4>>();
    asio::async_read(*sock, asio::buffer(*buf), [this, sock, buf](std::error_code ec, size_t) {
      if (ec) return;
      std::string word(buf->data(), 4);
      if (!IsFourLetterWord(word)) {
        QLOG_INFO("closing a connection from %s: not a known four-letter word",
                  sock->remote_endpoint(ec).address().to_string().c_str());
        return;
      }
      auto answer = std::make_shared<std::string>(AnswerFourLetterWord(word, config, *pipeline));
      asio::async_write(*sock, asio::buffer(*answer), [sock, answer](std::error_code, size_t) {
        std::error_code ignored;
        sock->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      });
    });
  }
};

ClientPort::ClientPort(const Config& config, Pipeline* pipeline) : impl_(new Impl) {
  impl_->config = config;
  impl_->pipeline = pipeline;
}

ClientPort::~ClientPort() {
  Stop();
}

Result<int> ClientPort::Start(int threads) {
  std::error_code ec;
  auto addr = asio::ip::make_address(impl_->config.client_address, ec);
  if (ec)
    return InvalidArgument("clientPortAddress '" + impl_->config.client_address +
                           "': " + ec.message());
  asio::ip::tcp::endpoint ep(addr, static_cast<uint16_t>(impl_->config.client_port));
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return IoError("cannot listen on " + impl_->config.client_address + ":" +
                   std::to_string(impl_->config.client_port) + ": " + ec.message());
  int port = impl_->acceptor.local_endpoint().port();
  impl_->work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      impl_->io.get_executor());
  impl_->Accept();
  for (int i = 0; i < threads; i++) impl_->threads.emplace_back([this] { impl_->io.run(); });
  return port;
}

void ClientPort::Stop() {
  if (!impl_ || impl_->threads.empty()) return;
  asio::post(impl_->io, [this] {
    std::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace qfs
