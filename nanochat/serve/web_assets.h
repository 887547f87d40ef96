// web_assets: files of web/ built into the program (cmake/embed.cmake generates their definitions from web/ui.html
// and web/logo.svg), so `nanochat chat_web` serves its UI from any working directory.
#pragma once

#include <string_view>

namespace nanochat {

std::string_view ui_html();
std::string_view logo_svg();

}  // namespace nanochat
