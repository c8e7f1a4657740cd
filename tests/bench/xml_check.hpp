// A small XML well-formedness check for the SVG tests: one root element, every tag closed in
// order, attributes quoted and unique per element, only the five predefined entities (or
// character references) after '&', no '<' in text or attribute values.
#pragma once

#include <string>
#include <string_view>

namespace vireo::bench::test {

// Empty if well-formed, else what is wrong and where (byte offset).
std::string xml_problem(std::string_view xml);

}  // namespace vireo::bench::test
