// Package segments appends every audited request to the day's segment file under SEGMENT_DIR.
// Segments are compacted nightly; nothing ever deletes them.
package segments

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

type Writer struct{ Dir string }

func (w *Writer) Append(event map[string]any) error {
	name := filepath.Join(w.Dir, time.Now().UTC().Format("2006-01-02")+".jsonl")
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	line, err := json.Marshal(event)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return err
}
